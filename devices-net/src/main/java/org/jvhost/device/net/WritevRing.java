package org.jvhost.device.net;

import java.io.IOException;
import org.jvhost.uring.IoUring;

/**
 * An io_uring that does one thing: a batch of writev calls on a file descriptor, submitted and reaped
 * with one io_uring_enter. A TAP takes one frame per write and has no batched write call of its own, so
 * without this every frame costs a system call; with it, a batch of 32 costs one (about half the CPU
 * time per frame in the kernel's write path, BENCHMARKS.md).
 *
 * <p>A batch is synchronous: {@link #writev} returns only when every write of the batch has completed, so
 * the caller may hand the frames' buffers back to the driver at once. A TAP or socket opened with
 * O_NONBLOCK never waits inside a write, so io_uring runs the writes inline, in submission order, within
 * the io_uring_enter call; a write that would block fails with -EAGAIN like a plain writev would.
 *
 * <p>Used by one thread at a time (a queue pair's worker); created and closed with the queues stopped.
 */
final class WritevRing implements AutoCloseable, IoUring.CompletionSink {
    /** A result the kernel never produced: the write was not submitted. */
    static final long NOT_SUBMITTED = Long.MIN_VALUE;

    private final IoUring ring;
    /** The results of the batch being reaped. */
    private long[] results;

    private WritevRing(IoUring ring) {
        this.ring = ring;
    }

    /**
     * Sets up a ring of at least {@code entries} submission entries.
     *
     * @throws IOException naming the errno when the kernel refuses (see {@link IoUring#create})
     */
    static WritevRing create(int entries) throws IOException {
        return new WritevRing(IoUring.create(entries));
    }

    /** How many writes one {@link #writev} call takes at most. */
    int capacity() {
        return ring.sqEntries();
    }

    /**
     * Writes frames {@code 0..count-1} to {@code fd}, in order: frame i is the {@code counts[i]} iovecs
     * from entry {@code firsts[i]} of the iovec array at native address {@code iov}. Returns when all have
     * completed; {@code results[i]} is then the bytes written or {@code -errno}.
     *
     * @return 0; or the errno of an io_uring_enter that failed (not EINTR), after which the ring must be
     *         closed: frames it had not taken keep {@code results[i] == NOT_SUBMITTED}, the others that
     *         did not complete get {@code -errno}
     */
    int writev(int fd, long iov, int[] firsts, int[] counts, int count, long[] results) {
        if (count > capacity()) {
            throw new IllegalArgumentException("a batch of " + count + " writes exceeds the ring's " + capacity());
        }
        for (int i = 0; i < count; i++) {
            // always room: every earlier batch was taken whole, or the ring was closed
            ring.prepare(IoUring.OP_WRITEV, fd, TapNatives.iovecAt(iov, firsts[i]), counts[i], 0, 0, i);
            results[i] = NOT_SUBMITTED;
        }
        this.results = results;
        return submitAndWait(count, results);
    }

    private int submitAndWait(int count, long[] results) {
        int submitted = 0;
        int completed = 0;
        while (completed < count) {
            int r = ring.submitAndWait(count - completed);
            if (r < 0) {
                if (-r == IoUring.EINTR) {
                    continue; // a signal during the wait: what was submitted stays submitted
                }
                ring.reap(this);
                failTaken(results, submitted, -r);
                return -r;
            }
            submitted += r;
            completed += ring.reap(this);
        }
        return 0;
    }

    @Override
    public void completed(long frame, int result) {
        if (frame >= 0 && frame < results.length) {
            results[(int) frame] = result;
        }
    }

    /**
     * After a failed enter: the kernel takes SQEs in ring order, so the first {@code taken} frames were
     * submitted; those without a completion count as failed with the enter's errno. A failed enter took
     * nothing, so the rest stay {@link #NOT_SUBMITTED}.
     */
    private static void failTaken(long[] results, int taken, int errno) {
        for (int i = 0; i < taken; i++) {
            if (results[i] == NOT_SUBMITTED) {
                results[i] = -errno;
            }
        }
    }

    @Override
    public void close() {
        ring.close();
    }
}
