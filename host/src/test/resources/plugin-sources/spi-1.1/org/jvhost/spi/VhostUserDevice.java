package org.jvhost.spi;

/**
 * A virtio device served over vhost-user. Shaped after crosvm's {@code VhostUserDevice} and rust-vmm's
 * {@code VhostUserBackend}: the device speaks in virtio terms and the host owns the protocol.
 *
 * <h2>Lifecycle of a queue</h2>
 * While the front-end configures a ring (size, addresses, base index) the host keeps it in a passive
 * configuration. When the ring is started and enabled the host hands a live {@link Virtqueue} to
 * {@link #startQueue}; each kick then becomes a {@link #handleKick} call; when the front-end stops
 * or disables the ring the host takes the queue back with {@link #stopQueue}. All three run on the
 * worker thread of the queue's {@linkplain #queueGroup group}, never concurrently with each other.
 *
 * <h2>Errors</h2>
 * An exception thrown from a queue callback puts the device in an error state (its rings stop and the
 * host logs the device and the cause); the host and other devices keep running. Hostile descriptors are
 * not exceptions: the {@link Virtqueue} reports them by {@linkplain Virtqueue#isBroken() breaking}.
 */
public interface VhostUserDevice {

    /** The virtio device id (1 = network, 2 = block, ...), for logs and capabilities. */
    int deviceType();

    /** How many virtqueues the device has at most (a virtio-net device with N pairs: 2N, plus a control queue if any). */
    int maxQueues();

    /** The largest ring size the device accepts. */
    default int maxQueueSize() {
        return 1024;
    }

    /**
     * The device-specific virtio feature bits the device offers (bits 0-23, and device bits above 40).
     * The host adds the transport features it implements itself ({@link VirtioFeatures#HOST_TRANSPORT})
     * and the vhost-user protocol-features bit; the device must not offer transport bits the host lacks.
     */
    long features();

    /**
     * The front-end acknowledged these features (device-specific and transport bits). Called before any
     * queue starts, and again if the front-end renegotiates after a reset.
     */
    void ackFeatures(long acked);

    /** Size of the device's config space in bytes; 0 means the device has none (the default). */
    default int configSize() {
        return 0;
    }

    /**
     * Fills {@code dst} with config-space bytes starting at {@code offset}. The host has checked that
     * {@code offset + dst.length <= configSize()}.
     */
    default void readConfig(int offset, byte[] dst) {
    }

    /**
     * The driver wrote config-space bytes at {@code offset}. The default ignores the write, which is
     * right for read-only config fields. Range-checked like {@link #readConfig}.
     */
    default void writeConfig(int offset, byte[] src) {
    }

    /**
     * Which group a queue belongs to. Queues of one group are served by the same worker thread, one
     * callback at a time. The default gives every queue its own group.
     */
    default int queueGroup(int queueIndex) {
        return queueIndex;
    }

    /**
     * Takes over a live queue. From now until {@link #stopQueue}, only this device touches it. Runs on the
     * group's worker. The queue may already hold available buffers; the host follows this call with a
     * {@link #handleKick} so none is missed.
     */
    void startQueue(int queueIndex, Virtqueue queue);

    /**
     * The driver made buffers available on a started queue (a kick). Runs on the group's worker, which
     * serves nothing else until this returns. The device may return with buffers still available, for
     * example after a budget of chains so that other queues, fd watches and host requests on the same
     * worker are not starved under steady traffic, and may leave notifications disabled then: if the
     * call took at least one chain and buffers remain or notifications are still disabled, the host calls
     * this method again soon without a new kick (see "Returning with work left" in {@link Virtqueue}).
     */
    void handleKick(int queueIndex);

    /**
     * Gives a started queue back to the host, which will read its next available index. Runs on the
     * group's worker. The device must not touch the queue afterwards.
     */
    Virtqueue stopQueue(int queueIndex);

    /**
     * Back to the state of a freshly created device: no queues (all were stopped before this call), no
     * acknowledged features. Called on RESET_OWNER, RESET_DEVICE, and when a front-end disconnects.
     */
    void reset();

    /**
     * All queues have been stopped and the device must not write guest memory or signal the driver until
     * a queue starts again (the spec's "suspended device state"). The default does nothing, which is
     * right for a device that only acts inside queue callbacks.
     */
    default void suspend() {
    }

    /**
     * The device's own counters (frames, bytes, drops...), for logs and the control API. The default
     * reports none.
     */
    default java.util.Map<String, Long> counters() {
        return java.util.Map.of();
    }

    /**
     * The device's own counters for one queue, for the control API and metrics; the default reports
     * none. Names follow {@link #counters()}: {@code rx_frames}, {@code tx_bytes}, {@code rx_dropped_*}...
     * Called on a control thread, like {@link #counters()}: read what the workers write without locks.
     */
    default java.util.Map<String, Long> queueCounters(int queueIndex) {
        return java.util.Map.of();
    }

    /**
     * The host no longer serves the device (it was removed at run time, replaced by a reload, or the host
     * stops; or it was created only to validate a configuration that failed as a whole). Its queues are
     * stopped and it was reset before. Release what {@link DeviceProvider#create} acquired (a TAP fd, a
     * file). Called at most once. The default does nothing.
     */
    default void close() {
    }
}
