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
 * <p>While a started ring is disabled the device does not hold its queue. The host leaves the ring's
 * buffers for the device to find when the ring is enabled again, except on a
 * {@linkplain #isTransmitQueue transmit queue}, whose buffers the host itself returns unsent.
 *
 * <h2>Threads</h2>
 * Queue callbacks run on the queue group's worker (see the {@code org.jvhost.spi} package comment).
 * {@link #features}, {@link #ackFeatures}, {@link #reset} and {@link #suspend} run on a control thread
 * while no queue of the device runs; {@link #readConfig}, {@link #writeConfig}, {@link #announce} and
 * the counters run on a control thread at any time, also while queues run. No callback may block for
 * long: a worker serves other devices' queues, a control thread other devices' sockets. Blocking work
 * (file I/O) goes to a thread of the device's own, and finishes through {@link Virtqueue#defer}.
 *
 * <h2>Logging</h2>
 * Log through SLF4J: declare {@code org.slf4j:slf4j-api} with scope {@code provided}; the host shares
 * its SLF4J with every plugin (and routes it to its own log), so a plugin must not bundle SLF4J or a
 * binding. Name the device ({@link DeviceContext#deviceName()}) in each line, log per-request problems
 * caused by the guest at most once per queue (a hostile guest can make millions), and never log on the
 * per-request path at INFO.
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
     * The virtio feature bits the device offers: its device-specific bits (virtio 1.2 section 6: bits
     * 0-23 and 50-127, of which a {@code long} holds 50-63; {@link VirtioFeatures#DEVICE_SPECIFIC}). The
     * host adds the transport features it implements itself ({@link VirtioFeatures#HOST_TRANSPORT}) and
     * the vhost-user protocol-features bit. A transport bit (24-49) outside
     * {@link VirtioFeatures#DEVICE_MAY_OFFER} is refused when the device is created, with a message
     * naming the bit: offering, say, RING_PACKED, which the host does not implement, would let a driver
     * negotiate a ring layout nobody serves. Asked once at creation and again on every GET_FEATURES.
     */
    long features();

    /**
     * Whether the host may offer VIRTIO_F_RING_PACKED (bit 34) for this device. The packed ring is
     * served behind the same {@link Virtqueue} and {@link DescriptorChain} ({@link Virtqueue#defer}
     * included), so a device needs no code for it; one that must keep split rings returns false. A
     * device that asks for {@link HostService#INFLIGHT_TRACKING} gets split rings whatever it answers.
     *
     * @since SPI 1.4
     */
    default boolean packedRing() {
        return true;
    }

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
     * {@code offset + dst.length <= configSize()}. Called on a control thread, possibly while queues run
     * (the driver reads config space at any time).
     *
     * <p>Fields that depend on the ring size cannot know it: QEMU reads the config space (GET_CONFIG)
     * before it sets the rings' sizes (SET_VRING_NUM). So a bound such as virtio-blk's {@code seg_max}
     * ("the maximum number of segments in a request") must hold for any ring the device accepts: derive
     * it from {@link #maxQueueSize()} (QEMU's own back-ends report the ring size minus 2), and check the
     * chains a queue actually pops against their own ring.
     */
    default void readConfig(int offset, byte[] dst) {
    }

    /**
     * The driver wrote config-space bytes at {@code offset}. The default ignores the write, which is
     * right for read-only config fields. Range-checked like {@link #readConfig}.
     *
     * <p>Called on a control thread <em>while queues run</em>: QEMU forwards a guest's config write
     * (virtio-blk's {@code writeback}, when the guest switches the write-cache mode) as SET_CONFIG at any
     * time. So a field the workers read must be published safely (a volatile field, or posted to the
     * queues' work), and the call must not block on the workers.
     */
    default void writeConfig(int offset, byte[] src) {
    }

    /**
     * The optional host services this device needs (see {@link HostService}). Asked once per front-end
     * connection, on a control thread, before anything is negotiated. The default, none, keeps the
     * behaviour of hosts before SPI 1.4.
     *
     * @since SPI 1.4
     */
    default java.util.Set<HostService> hostServices() {
        return java.util.Set.of();
    }

    /**
     * Which group a queue belongs to. Queues of one group are served by the same worker thread, one
     * callback at a time. The default gives every queue its own group.
     */
    default int queueGroup(int queueIndex) {
        return queueIndex;
    }

    /**
     * Whether the driver transmits on this queue: a network device's transmit queue, which for virtio-net
     * is every odd index ({@link org.jvhost.spi.virtio.VirtioNet#isTxQueue}). While such a ring is started
     * but disabled, the host processes it without the device: it returns each chain the driver makes
     * available with nothing written and signals the driver as for any used buffer, so frames sent then are
     * dropped, never sent after the ring is enabled again. That is vhost-user's "Ring states": "for a
     * networking device, in the disabled state the back-end must not supply any new RX packets, but must
     * process and discard any TX packets". Other rings are not processed while disabled.
     *
     * <p>Asked when the ring starts (its features are acknowledged by then), on a control thread. The
     * default, false for every queue, suits a device that is not a network card.
     */
    default boolean isTransmitQueue(int queueIndex) {
        return false;
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
     * Gives a started queue back to the host for a hot upgrade's handover, as {@link #stopQueue} does, but
     * the queue goes on where it stopped: in the next jvhost process, which takes this device's {@link
     * #saveState() state}, or in this one ({@link #startQueue} again) if the upgrade is abandoned. So the
     * device leaves what backs the queue outside the process as it is: a net device keeps its TAP queue
     * attached, which the kernel would otherwise purge of the frames it holds. Runs on the group's worker.
     * The default stops the queue as {@link #stopQueue} does.
     *
     * @since SPI 1.7
     */
    default Virtqueue pauseQueue(int queueIndex) {
        return stopQueue(queueIndex);
    }

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
     * Whether the device can {@linkplain #announce announce} where the guest now is after a live
     * migration. The default, false, suits a device that is not a network card.
     */
    default boolean canAnnounce() {
        return false;
    }

    /**
     * The guest has just moved here (live migration) and the network must learn where it is: a network
     * card broadcasts a RARP with the guest's {@code mac} (6 bytes), as switches and bridges learn from
     * its source address. Called on a control thread, possibly while queues run, only if
     * {@link #canAnnounce()}; a failure is logged, nothing else. The default does nothing.
     */
    default void announce(byte[] mac) {
    }

    /**
     * The operator asks the device to change its capacity to {@code bytes} ({@code jvhost ctl resize}):
     * a disk grows or shrinks. A device that can updates its config space and tells the driver with
     * {@link DeviceContext#notifyConfigChanged()}. Called on a control thread, possibly while queues run.
     * The default refuses: most devices have no capacity.
     *
     * @throws UnsupportedOperationException if the device has no capacity to change
     * @throws IllegalArgumentException      naming what is wrong with {@code bytes} (not a multiple of
     *                                       the block size, larger than the backing file can grow...)
     * @since SPI 1.4
     */
    default void resize(long bytes) {
        throw new UnsupportedOperationException("this device has no capacity to resize");
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
     * Hot upgrade: the device's state for the next jvhost process, or null (the default) if the device
     * does not take part. Called on a control thread after every queue of the device was stopped
     * ({@link #stopQueue}) and the device {@linkplain #suspend() suspended}; the negotiated features,
     * guest memory and rings are passed on by the host itself, so the state holds only what the device
     * adds (a TAP fd, counters, a MAC filter). If the upgrade is then abandoned the same queues start
     * again on this device.
     *
     * <p>A device that returns null is disconnected from its front-end at the upgrade (which reconnects
     * to the new process and negotiates again), with a log line; the others carry on undisturbed.
     *
     * @since SPI 1.4
     */
    default DeviceState saveState() {
        return null;
    }

    /**
     * Hot upgrade, first phase: what the next jvhost process's {@link DeviceProvider#create} needs to make
     * this device while this one still serves it (a TAP's fds), or null (the default). Called on a control
     * thread while the queues run, so it must not carry what they change (counters: {@link #saveState()}
     * does, after the pause). A device that returns a state is created by the successor before its queues
     * stop, with this state as {@link DeviceContext#handedOverState()}; that keeps the traffic gap down to
     * the queues' stop and restart. With null the successor creates it only after every queue stopped,
     * from {@link #saveState()}'s state, and the whole upgrade's gap includes the creation of every device.
     * An empty state (no data, no fds) says "nothing needed, create me early". A device created early
     * has its features acknowledged before {@link #restoreState} (still before any queue starts).
     *
     * @since SPI 1.5
     */
    default DeviceState saveResources() {
        return null;
    }

    /**
     * Hot upgrade: takes over {@code state}, saved by {@link #saveState()} of this device type in the
     * previous jvhost process (possibly an older version of the plugin: check {@link DeviceState#format()}
     * and {@link DeviceState#version()}). Called on a control thread on a freshly created device, before
     * the host re-acknowledges its features and starts its queues. Once it returns, the device owns the
     * state's fds (and closes them in {@link #close()}); if it throws, the host closes them.
     *
     * @throws IllegalArgumentException if the state cannot be read; the upgrade is then abandoned and the
     *                                  previous process keeps serving. The default throws, for a device
     *                                  whose {@link #saveState()} returns null.
     * @since SPI 1.4
     */
    default void restoreState(DeviceState state) {
        throw new IllegalArgumentException("this device does not restore a saved state (" + state.format() + ")");
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
