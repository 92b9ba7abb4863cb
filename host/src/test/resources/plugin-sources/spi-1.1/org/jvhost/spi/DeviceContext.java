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
