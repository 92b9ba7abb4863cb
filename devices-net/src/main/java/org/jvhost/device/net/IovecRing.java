package org.jvhost.device.net;

import com.sun.jna.Pointer;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.jvhost.uring.IoUring;

/**
 * An io_uring that does one thing: a batch of writev (or readv) calls on a file descriptor, submitted
 * and reaped with one io_uring_enter. A TAP takes or gives one frame per call and has no batched call of
 * its own, so without this every frame costs a system call; with it, a batch of 32 costs one (about half
 * the CPU time per frame in the kernel's write path, BENCHMARKS.md).
 *
 * <p>A batch is synchronous: {@link #writev} and {@link #readv} return only when every call of the batch
 * has completed, so the caller may hand the frames' buffers back to the driver at once. A write to a TAP
 * never waits (a full TAP drops the frame), so io_uring runs the writes inline, in submission order,
 * within the io_uring_enter call. A read of an empty TAP would make io_uring wait for the TAP to become
 * readable, O_NONBLOCK or not (kernel 6.18: it arms a poll), so reads carry RWF_NOWAIT: one that finds
 * the queue empty completes inline with -EAGAIN, like a plain readv of a non-blocking fd. It does not
 * stop the later reads of its batch: one of them may find a frame that arrived meanwhile.
 *
 * <p>A frame of one iovec goes as a plain WRITE or READ of its buffer: the kernel then imports no iovec
 * array (copying it in, checking it), which it does per entry for WRITEV and READV (BENCHMARKS.md).
 *
 * <p>Used by one thread at a time (a queue pair's worker, for both directions); created and closed with
 * the queues stopped.
 */
final class IovecRing implements AutoCloseable, IoUring.CompletionSink {
    /** A result the kernel never produced: the write was not submitted. */
    static final long NOT_SUBMITTED = Long.MIN_VALUE;
    /** preadv2's flag: fail with EAGAIN rather than wait for data (linux/fs.h). */
    static final int RWF_NOWAIT = 0x8;

    private final IoUring ring;
    /** Views of the (at most two: TX and RX) iovec arrays the caller passes, by address, to read single entries. */
    private long viewAddress0;
    private long viewAddress1;
    private ByteBuffer view0;
    private ByteBuffer view1;
    /** The results of the batch being reaped. */
    private long[] results;
    /** The descriptor registered as the ring's fixed file 0 ({@link #registerFile}), or -1. */
    private int fixedFd = -1;

    private IovecRing(IoUring ring) {
        this.ring = ring;
    }

    /**
     * Sets up a ring of at least {@code entries} submission entries.
     *
     * @throws IOException naming the errno when the kernel refuses (see {@link IoUring#create})
     */
    static IovecRing create(int entries) throws IOException {
        return new IovecRing(IoUring.create(entries));
    }

    /**
     * Registers {@code fd} (the TAP queue this ring serves) as the ring's fixed file: batches on it then
     * name it by index, and the kernel skips the descriptor lookup and file reference per frame (about 2%
     * of the worker's time in an RX drain, BENCHMARKS.md). The ring holds the file until {@link #close},
     * which unregisters it first so that the TAP queue goes with its descriptor. Without it (a kernel
     * that refuses) every entry carries the descriptor, as before.
     *
     * @return 0, or the errno of the refusal
     */
    int registerFile(int fd) {
        int r = ring.registerFiles(new int[] {fd});
        if (r == 0) {
            fixedFd = fd;
        }
        return -r;
    }

    /** How many frames one {@link #writev} or {@link #readv} call takes at most. */
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
        return run(IoUring.OP_WRITE, IoUring.OP_WRITEV, 0, fd, iov, firsts, counts, count, results);
    }

    /**
     * Reads frames {@code 0..count-1} from {@code fd}, in order, as {@link #writev} writes them: frame i
     * into the {@code counts[i]} iovecs from entry {@code firsts[i]}; {@code results[i]} is then the
     * frame's bytes or {@code -errno} (-EAGAIN: the queue was empty when that read ran; -EOPNOTSUPP: the
     * file does not take RWF_NOWAIT).
     *
     * @return as {@link #writev}
     */
    int readv(int fd, long iov, int[] firsts, int[] counts, int count, long[] results) {
        return run(IoUring.OP_READ, IoUring.OP_READV, RWF_NOWAIT, fd, iov, firsts, counts, count, results);
    }

    private int run(int single, int vectored, int rwFlags, int fd, long iov, int[] firsts, int[] counts, int count, long[] results) {
        if (count > capacity()) {
            throw new IllegalArgumentException("a batch of " + count + " calls exceeds the ring's " + capacity());
        }
        for (int i = 0; i < count; i++) {
            // always room: every earlier batch was taken whole, or the ring was closed
            int opcode;
            long address;
            int length;
            if (counts[i] == 1) {
                ByteBuffer v = view(iov);
                int entry = firsts[i] * TapNatives.IOVEC_SIZE;
                opcode = single;
                address = v.getLong(entry);
                length = (int) v.getLong(entry + 8);
            } else {
                opcode = vectored;
                address = TapNatives.iovecAt(iov, firsts[i]);
                length = counts[i];
            }
            if (fd == fixedFd) {
                ring.prepareFixed(opcode, 0, address, length, 0, rwFlags, i);
            } else {
                ring.prepare(opcode, fd, address, length, 0, rwFlags, i);
            }
            results[i] = NOT_SUBMITTED;
        }
        this.results = results;
        return submitAndWait(count, results);
    }

    /** A view of the iovec array at {@code iov}; made once per array (a pair passes the same two). */
    private ByteBuffer view(long iov) {
        if (iov == viewAddress0) {
            return view0;
        }
        if (iov == viewAddress1) {
            return view1;
        }
        ByteBuffer v = new Pointer(iov).getByteBuffer(0, (long) TapNatives.IOV_MAX * TapNatives.IOVEC_SIZE)
                .order(ByteOrder.nativeOrder());
        viewAddress1 = viewAddress0;
        view1 = view0;
        viewAddress0 = iov;
        view0 = v;
        return v;
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

    /** Closes the ring, unregistering the TAP first so that its queue's file goes with its descriptor. */
    @Override
    public void close() {
        if (fixedFd != -1) {
            ring.unregisterFiles();
            fixedFd = -1;
        }
        ring.close();
    }
}
