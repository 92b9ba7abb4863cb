package org.jvhost.spi;

/**
 * A popped descriptor chain whose device finishes it later, from any thread: an I/O thread, an io_uring
 * completion, a callback of a library. Taken with {@link Virtqueue#defer}, on the queue's worker, right
 * after {@link Virtqueue#pop}; it outlives the (reused) {@link DescriptorChain} object, so the device
 * copies what it needs of the chain (its segments' addresses or views) before the next pop into it.
 *
 * <h2>Ordering</h2>
 * {@link #complete} only hands the result to the host and wakes the queue's worker (no fd for the device
 * to manage). The worker then writes the used element and publishes it ({@code addUsed}, then
 * {@code signalUsed}: a release store of used->idx, then the driver's notification if it wants one),
 * between two device callbacks, never inside one. Everything the completing thread wrote into the
 * chain's buffers before calling {@code complete} is visible to the driver when it sees the used element
 * (the hand-over is a release/acquire pair). Completions of one queue are published in the order the
 * worker receives them, which may differ from the order the chains were popped: virtio lets a device
 * use buffers out of order.
 *
 * <h2>Stopping a queue</h2>
 * While chains are outstanding, stopping the ring (GET_VRING_BASE, a reset, a disconnect) and a memory
 * update wait, on the worker and without blocking it, for them to complete, up to a bound (5 s):
 * vhost-user-blk front-ends such as QEMU expect in-flight requests to be finished before GET_VRING_BASE
 * is answered. The device is told {@link VhostUserDevice#stopQueue} first, so it takes no new chains,
 * but its outstanding ones still publish. A completion that arrives after the bound, or after the queue
 * was stopped for good, is dropped: it writes neither guest memory nor the ring, and the stopped ring's
 * avail index counts it as consumed (a front-end with inflight tracking resubmits it).
 *
 * @since SPI 1.4
 */
public interface Completion {

    /** The chain's head descriptor index. */
    int head();

    /** Bytes in the chain's device-writable part: the most {@link #complete} may report. */
    int writableBytes();

    /**
     * Returns the chain to the driver with {@code writtenBytes} bytes written into its device-writable
     * part. Any thread, at most once per {@link Virtqueue#defer}; the handle must not be used afterwards
     * (the host reuses it for a later chain of the same head).
     *
     * @throws IllegalArgumentException if {@code writtenBytes} is negative or above {@link #writableBytes()}
     * @throws IllegalStateException    if it was already completed
     */
    void complete(int writtenBytes);
}
