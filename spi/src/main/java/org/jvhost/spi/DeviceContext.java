package org.jvhost.spi;

/**
 * Services the host offers a device. Passed to {@link DeviceProvider#create}.
 */
public interface DeviceContext {

    /** The device's name in logs, e.g. {@code loopback@/tmp/jvhost-lo.sock}. */
    String deviceName();

    /**
     * Watches a file descriptor the device owns (a TAP queue, a timer) in the host's event loop.
     * {@code onReadable} runs on the worker of {@code queueGroup} whenever the fd is readable, serialized
     * with that group's queue callbacks. The watch is level-triggered; the device reads until EAGAIN or
     * {@linkplain FdWatch#pause() pauses} the watch.
     *
     * @throws UnsupportedOperationException in hosts that cannot watch fds
     */
    default FdWatch watchReadable(int fd, int queueGroup, Runnable onReadable) {
        throw new UnsupportedOperationException("this host cannot watch device file descriptors");
    }

    /**
     * Tells the driver that the device's config space changed (a disk grew, a link went down), so it
     * reads the config space again. Needs {@link HostService#CONFIG_CHANGE_NOTICE} in
     * {@link VhostUserDevice#hostServices()}. Callable from any thread; never blocks: the notice is
     * queued and sent by the host. A front-end that does not read it in time is logged and the notice
     * dropped.
     *
     * @return true if the notice was queued for a connected front-end that accepted such notices; false
     *         if no front-end can be told now (none connected, it did not offer a channel for them, or the
     *         device did not ask for the service). The host then sends the notice to the next front-end
     *         that offers a channel; the driver also reads the config space anew when it next starts the
     *         device.
     * @since SPI 1.4
     */
    default boolean notifyConfigChanged() {
        return false;
    }

    /**
     * Hot upgrade: the state the previous jvhost process saved for this device ({@link
     * VhostUserDevice#saveState()}), while this process takes over from it; null at any other start. A
     * device that must not open a resource twice (a TAP queue) takes it from here in {@link
     * DeviceProvider#create} instead of opening it: duplicate the fds (the host still owns the state's own
     * until {@link VhostUserDevice#restoreState} returns, which is called with this same state later). A
     * device whose previous instance {@linkplain VhostUserDevice#saveResources() saved its resources} is
     * created while that one still serves: this is then that resources state (SPI 1.5), owned by the host
     * until {@code create} returns, and {@code restoreState} later gets the state saved after the pause.
     *
     * @since SPI 1.4
     */
    default DeviceState handedOverState() {
        return null;
    }

    /** A registration made with {@link #watchReadable}. */
    interface FdWatch extends AutoCloseable {
        /** Stops delivering readiness until {@link #resume()} (back-pressure). */
        void pause();

        /** Delivers readiness again. */
        void resume();

        /** Removes the watch. The device still owns and closes the fd. */
        @Override
        void close();
    }
}
