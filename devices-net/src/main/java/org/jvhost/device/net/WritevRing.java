package org.jvhost.device.net;

import static org.jvhost.device.net.IoUringLayout.*;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

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
final class WritevRing implements AutoCloseable {
    /** A result the kernel never produced: the write was not submitted. */
    static final long NOT_SUBMITTED = Long.MIN_VALUE;

    private static final VarHandle U32 = MethodHandles.byteBufferViewVarHandle(int[].class, ByteOrder.nativeOrder());

    private final int ringFd;
    private final int entries;
    private final long sqRingAddress;
    private final long sqRingSize;
    private final long cqRingAddress;
    private final long cqRingSize;
    private final long sqesAddress;
    private final long sqesSize;
    private final ByteBuffer sqRing;
    private final ByteBuffer cqRing;
    private final ByteBuffer sqes;
    private final int sqTailOffset;
    private final int sqMask;
    private final int cqHeadOffset;
    private final int cqTailOffset;
    private final int cqMask;
    private final int cqesOffset;
    /** Our copies of the indices we own: the next SQ tail to publish and the next CQ entry to read. */
    private int sqTail;
    private int cqHead;
    private boolean closed;

    private WritevRing(int ringFd, Memory params, long sqRingAddress, long sqRingSize, long cqRingAddress,
            long cqRingSize, long sqesAddress, long sqesSize) {
        this.ringFd = ringFd;
        this.entries = params.getInt(PARAMS_SQ_ENTRIES);
        this.sqRingAddress = sqRingAddress;
        this.sqRingSize = sqRingSize;
        this.cqRingAddress = cqRingAddress;
        this.cqRingSize = cqRingSize;
        this.sqesAddress = sqesAddress;
        this.sqesSize = sqesSize;
        this.sqRing = view(sqRingAddress, sqRingSize);
        this.cqRing = view(cqRingAddress, cqRingSize);
        this.sqes = view(sqesAddress, sqesSize);
        this.sqTailOffset = params.getInt(SQ_OFF_TAIL);
        this.sqMask = sqRing.getInt(params.getInt(SQ_OFF_RING_MASK));
        this.cqHeadOffset = params.getInt(CQ_OFF_HEAD);
        this.cqTailOffset = params.getInt(CQ_OFF_TAIL);
        this.cqMask = cqRing.getInt(params.getInt(CQ_OFF_RING_MASK));
        this.cqesOffset = params.getInt(CQ_OFF_CQES);
        this.sqTail = sqRing.getInt(sqTailOffset);
        this.cqHead = cqRing.getInt(cqHeadOffset);
        // SQ array entry i always names SQE i: a batch fills SQEs in ring order
        int array = params.getInt(SQ_OFF_ARRAY);
        for (int i = 0; i < entries; i++) {
            sqRing.putInt(array + 4 * i, i);
        }
    }

    /**
     * Sets up a ring of at least {@code entries} submission entries.
     *
     * @throws IOException naming the errno when the kernel refuses (ENOSYS: built without io_uring; EPERM:
     *         disabled by the kernel.io_uring_disabled sysctl or a seccomp filter; ENOMEM: locked-memory limit)
     */
    static WritevRing create(int entries) throws IOException {
        Memory params = new Memory(PARAMS_SIZE);
        params.clear();
        long fd = TapNatives.syscall(SYS_IO_URING_SETUP, entries, Pointer.nativeValue(params), 0, 0, 0, 0);
        if (fd < 0) {
            int errno = TapNatives.errno();
            throw new IOException("io_uring_setup failed (" + TapNatives.errnoName(errno) + ")");
        }
        int ringFd = (int) fd;
        long sqSize = params.getInt(SQ_OFF_ARRAY) + 4L * params.getInt(PARAMS_SQ_ENTRIES);
        long cqSize = params.getInt(CQ_OFF_CQES) + (long) CQE_SIZE * params.getInt(PARAMS_CQ_ENTRIES);
        long sqesSize = (long) SQE_SIZE * params.getInt(PARAMS_SQ_ENTRIES);
        boolean single = (params.getInt(PARAMS_FEATURES) & FEAT_SINGLE_MMAP) != 0;
        long sq = TapNatives.MAP_FAILED;
        long cq = TapNatives.MAP_FAILED;
        long sqes = TapNatives.MAP_FAILED;
        try {
            if (single) {
                sqSize = cqSize = Math.max(sqSize, cqSize);
            }
            sq = map(ringFd, sqSize, OFF_SQ_RING, "SQ ring");
            cq = single ? sq : map(ringFd, cqSize, OFF_CQ_RING, "CQ ring");
            sqes = map(ringFd, sqesSize, OFF_SQES, "SQE array");
            return new WritevRing(ringFd, params, sq, sqSize, cq, cqSize, sqes, sqesSize);
        } catch (IOException e) {
            unmap(sqes, sqesSize);
            if (!single) {
                unmap(cq, cqSize);
            }
            unmap(sq, sqSize);
            closeFd(ringFd);
            throw e;
        }
    }

    /** How many writes one {@link #writev} call takes at most. */
    int capacity() {
        return entries;
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
        if (count > entries) {
            throw new IllegalArgumentException("a batch of " + count + " writes exceeds the ring's " + entries);
        }
        for (int i = 0; i < count; i++) {
            int sqe = ((sqTail + i) & sqMask) * SQE_SIZE;
            sqes.put(sqe + SQE_OPCODE_FLAGS_IOPRIO_FD, (byte) OP_WRITEV);
            sqes.put(sqe + SQE_OPCODE_FLAGS_IOPRIO_FD + 1, (byte) 0);
            sqes.putShort(sqe + SQE_OPCODE_FLAGS_IOPRIO_FD + 2, (short) 0);
            sqes.putInt(sqe + SQE_OPCODE_FLAGS_IOPRIO_FD + 4, fd);
            sqes.putLong(sqe + SQE_OFF, 0);
            sqes.putLong(sqe + SQE_ADDR, TapNatives.iovecAt(iov, firsts[i]));
            sqes.putInt(sqe + SQE_LEN_RW_FLAGS, counts[i]);
            sqes.putInt(sqe + SQE_LEN_RW_FLAGS + 4, 0);
            sqes.putLong(sqe + SQE_USER_DATA, i);
            results[i] = NOT_SUBMITTED;
        }
        sqTail += count;
        // release: the kernel must see the SQEs filled before it sees the tail that covers them
        U32.setRelease(sqRing, sqTailOffset, sqTail);
        return submitAndWait(count, results);
    }

    private int submitAndWait(int count, long[] results) {
        int submitted = 0;
        int completed = 0;
        while (completed < count) {
            long r = TapNatives.syscall(SYS_IO_URING_ENTER, ringFd, count - submitted, count - completed,
                    ENTER_GETEVENTS, 0, 0);
            if (r < 0) {
                int errno = TapNatives.errno();
                if (errno == TapNatives.EINTR) {
                    continue; // a signal during the wait: what was submitted stays submitted
                }
                reap(results);
                failTaken(results, submitted, errno);
                return errno;
            }
            submitted += (int) r;
            completed += reap(results);
        }
        return 0;
    }

    /** Reads every posted completion into {@code results}; returns how many. */
    private int reap(long[] results) {
        // acquire: the completion entries are written before the kernel publishes the tail
        int tail = (int) U32.getAcquire(cqRing, cqTailOffset);
        int n = 0;
        for (; cqHead != tail; cqHead++, n++) {
            int cqe = cqesOffset + (cqHead & cqMask) * CQE_SIZE;
            long frame = cqRing.getLong(cqe + CQE_USER_DATA);
            if (frame >= 0 && frame < results.length) {
                results[(int) frame] = cqRing.getInt(cqe + CQE_RES);
            }
        }
        // release: the kernel may reuse the entries only after we read them
        U32.setRelease(cqRing, cqHeadOffset, cqHead);
        return n;
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
        if (closed) {
            return;
        }
        closed = true;
        unmap(sqesAddress, sqesSize);
        if (cqRingAddress != sqRingAddress) {
            unmap(cqRingAddress, cqRingSize);
        }
        unmap(sqRingAddress, sqRingSize);
        closeFd(ringFd);
    }

    private static void closeFd(int fd) {
        try {
            TapNatives.close(fd);
        } catch (com.sun.jna.LastErrorException e) {
            // the fd is gone either way
        }
    }

    private static long map(int fd, long size, long offset, String what) throws IOException {
        long address = TapNatives.mmap(0, size, TapNatives.PROT_READ | TapNatives.PROT_WRITE,
                TapNatives.MAP_SHARED | TapNatives.MAP_POPULATE, fd, offset);
        if (address == TapNatives.MAP_FAILED) {
            throw new IOException("io_uring: mapping its " + what + " failed (" + TapNatives.errnoName(TapNatives.errno()) + ")");
        }
        return address;
    }

    private static void unmap(long address, long size) {
        if (address != TapNatives.MAP_FAILED) {
            TapNatives.munmap(address, size);
        }
    }

    private static ByteBuffer view(long address, long size) {
        return new Pointer(address).getByteBuffer(0, size).order(ByteOrder.nativeOrder());
    }
}
