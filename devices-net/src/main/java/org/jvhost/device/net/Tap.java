package org.jvhost.device.net;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import java.io.IOException;

/**
 * The wire behind a net device: one TAP queue per virtio-net queue pair, each a file descriptor that
 * reads and writes whole frames, each frame preceded by a virtio-net header. {@link LinuxTap} is the
 * real one; tests stand a socket pair in its place.
 *
 * <p>The data-path methods never throw: they return a byte count, or a negated errno.
 */
interface Tap extends AutoCloseable {

    /** The interface name, for logs (e.g. {@code tap0}). */
    String name();

    /** How many queues (file descriptors) the TAP has. */
    int queueCount();

    /** The file descriptor of queue {@code queue}, to watch for readability. */
    int fd(int queue);

    /**
     * Reads one frame (header included) into the iovec array at native address {@code iov}.
     *
     * @return bytes of the frame, which exceed the iovec's room if the frame did not fit (the TAP then
     *         copied only what fitted); or {@code -errno} ({@code -EAGAIN} when no frame is queued)
     */
    long readv(int queue, long iov, int iovcnt);

    /** Writes one frame (header included) from the iovec array. @return bytes, or {@code -errno} */
    long writev(int queue, long iov, int iovcnt);

    /**
     * Writes one frame (header included) held in a Java array, for a rare frame made off the data path
     * (an announcement). @return bytes, or {@code -errno}
     */
    default long write(int queue, byte[] frame) {
        try (Memory m = new Memory(16L + frame.length)) {
            long base = Pointer.nativeValue(m);
            m.setLong(0, base + 16); // struct iovec {iov_base, iov_len}, then the frame
            m.setLong(8, frame.length);
            m.write(16, frame, 0, frame.length);
            return writev(queue, base, 1);
        }
    }

    /**
     * Writes {@code frames} frames to queue {@code queue}, in order, each as one {@link #writev}: frame i
     * is the {@code counts[i]} iovecs from entry {@code firsts[i]} of the iovec array at native address
     * {@code iov}. Returns when every write is done (the kernel reads none of the frames' bytes after);
     * {@code results[i]} is then the bytes written or {@code -errno}. This default makes one writev per
     * frame; {@link LinuxTap} submits the batch with one system call when it can.
     */
    default void writeFrames(int queue, long iov, int[] firsts, int[] counts, int frames, long[] results) {
        for (int i = 0; i < frames; i++) {
            results[i] = writev(queue, TapNatives.iovecAt(iov, firsts[i]), counts[i]);
        }
    }

    /**
     * Reads up to {@code frames} frames from queue {@code queue}, in order, each as one {@link #readv}:
     * frame i into the {@code counts[i]} iovecs from entry {@code firsts[i]} of the iovec array at native
     * address {@code iov}. Returns when every read is done; {@code results[i]} is then as {@link #readv}
     * returns. A negative result does not make the later ones negative: a batched read after one that
     * found the queue empty may find a frame that arrived meanwhile. This default stops at the first
     * failed readv and reports -EAGAIN for the reads it did not make; {@link LinuxTap} submits the batch
     * with one system call when it can.
     */
    default void readFrames(int queue, long iov, int[] firsts, int[] counts, int frames, long[] results) {
        int i = 0;
        while (i < frames) {
            long n = readv(queue, TapNatives.iovecAt(iov, firsts[i]), counts[i]);
            results[i++] = n;
            if (n < 0) {
                break;
            }
        }
        while (i < frames) {
            results[i++] = -TapNatives.EAGAIN;
        }
    }

    /** Attaches or detaches a queue of a multi-queue TAP (TUNSETQUEUE); a no-op with one queue. */
    void setQueueAttached(int queue, boolean attached) throws IOException;

    /** The TUN_F_* offloads this TAP accepted when probed: the most {@link #setOffloads} may ask for. */
    int supportedOffloads();

    /** TUNSETOFFLOAD: which offloaded frames (partial checksums, TSO, UFO) the TAP may hand us. */
    void setOffloads(int tunFlags) throws IOException;

    /** TUNSETVNETHDRSZ: the header length in front of every frame, both ways (10 or 12). */
    void setHeaderLength(int bytes) throws IOException;

    /** Closes every queue. */
    @Override
    void close();
}
