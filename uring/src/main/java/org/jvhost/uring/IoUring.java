package org.jvhost.uring;

import static org.jvhost.uring.IoUringLayout.*;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * One io_uring (io_uring_setup(2)): submission entries are filled in the shared SQE array and submitted
 * with io_uring_enter; completions are read from the shared CQ ring. Layout: {@link IoUringLayout}.
 *
 * <p>Two sides, each used by one thread at a time, possibly two different threads: the submitting side
 * ({@link #prepare}, {@link #submit}, {@link #submitAndWait}) and the reaping side ({@link #awaitCompletions},
 * {@link #reap}). The kernel lets one thread submit while another waits in io_uring_enter for completions;
 * the SQ ring has one producer (us) and the CQ ring one consumer (us). {@link #close} only once neither
 * side is in use.
 *
 * <p>Nothing here allocates or throws once the ring is set up: calls return counts or {@code -errno}.
 */
public final class IoUring implements AutoCloseable {
    public static final int OP_NOP = 0;
    public static final int OP_READV = 1;
    public static final int OP_WRITEV = 2;
    public static final int OP_FSYNC = 3;
    /** read(2) into one buffer: address and length instead of an iovec array (kernel 5.6). */
    public static final int OP_READ = 22;
    /** write(2) from one buffer (kernel 5.6). */
    public static final int OP_WRITE = 23;
    /** OP_FSYNC's flag: fdatasync rather than fsync. */
    public static final int FSYNC_DATASYNC = 1;
    /** errno: io_uring_enter was interrupted by a signal (retry). */
    public static final int EINTR = UringNatives.EINTR;
    /** errno: the kernel is short of resources for now (retry). */
    public static final int EAGAIN = UringNatives.EAGAIN;
    /** errno: completions must be reaped before more can be submitted (retry after reaping). */
    public static final int EBUSY = UringNatives.EBUSY;

    private static final VarHandle U32 = MethodHandles.byteBufferViewVarHandle(int[].class, ByteOrder.nativeOrder());

    /** Receives one completion: the entry's user data and its result (bytes, 0, or -errno). */
    public interface CompletionSink {
        void completed(long userData, int result);
    }

    private final int ringFd;
    private final int sqEntries;
    private final int cqEntries;
    private final long sqRingAddress;
    private final long sqRingSize;
    private final long cqRingAddress;
    private final long cqRingSize;
    private final long sqesAddress;
    private final long sqesSize;
    private final ByteBuffer sqRing;
    private final ByteBuffer cqRing;
    private final ByteBuffer sqes;
    private final int sqHeadOffset;
    private final int sqTailOffset;
    private final int sqMask;
    private final int cqHeadOffset;
    private final int cqTailOffset;
    private final int cqMask;
    private final int cqesOffset;
    /** Our copies of the indices we own: the next SQ tail to publish and the next CQ entry to read. */
    private int sqTail;
    private int cqHead;
    /** The eventfd {@link #signalCompletions} registered, or -1; and the 8 bytes its count is read into. */
    private int completionFd = -1;
    private Memory completionCount;
    private boolean closed;

    private IoUring(int ringFd, Memory params, long sqRingAddress, long sqRingSize, long cqRingAddress,
            long cqRingSize, long sqesAddress, long sqesSize) {
        this.ringFd = ringFd;
        this.sqEntries = params.getInt(PARAMS_SQ_ENTRIES);
        this.cqEntries = params.getInt(PARAMS_CQ_ENTRIES);
        this.sqRingAddress = sqRingAddress;
        this.sqRingSize = sqRingSize;
        this.cqRingAddress = cqRingAddress;
        this.cqRingSize = cqRingSize;
        this.sqesAddress = sqesAddress;
        this.sqesSize = sqesSize;
        this.sqRing = view(sqRingAddress, sqRingSize);
        this.cqRing = view(cqRingAddress, cqRingSize);
        this.sqes = view(sqesAddress, sqesSize);
        this.sqHeadOffset = params.getInt(SQ_OFF_HEAD);
        this.sqTailOffset = params.getInt(SQ_OFF_TAIL);
        this.sqMask = sqRing.getInt(params.getInt(SQ_OFF_RING_MASK));
        this.cqHeadOffset = params.getInt(CQ_OFF_HEAD);
        this.cqTailOffset = params.getInt(CQ_OFF_TAIL);
        this.cqMask = cqRing.getInt(params.getInt(CQ_OFF_RING_MASK));
        this.cqesOffset = params.getInt(CQ_OFF_CQES);
        this.sqTail = sqRing.getInt(sqTailOffset);
        this.cqHead = cqRing.getInt(cqHeadOffset);
        // SQ array entry i always names SQE i: entries are filled in ring order
        int array = params.getInt(SQ_OFF_ARRAY);
        for (int i = 0; i < sqEntries; i++) {
            sqRing.putInt(array + 4 * i, i);
        }
    }

    /**
     * Sets up a ring of at least {@code entries} submission entries (the kernel rounds up to a power of
     * two) and twice as many completion entries.
     *
     * @throws IOException naming the errno when the kernel refuses (ENOSYS: built without io_uring; EPERM:
     *         disabled by the kernel.io_uring_disabled sysctl or a seccomp filter; ENOMEM: locked-memory limit)
     */
    public static IoUring create(int entries) throws IOException {
        Memory params = new Memory(PARAMS_SIZE);
        params.clear();
        long fd = UringNatives.syscall(SYS_IO_URING_SETUP, entries, Pointer.nativeValue(params), 0, 0, 0, 0);
        if (fd < 0) {
            throw new IOException("io_uring_setup failed (" + UringNatives.errnoName(UringNatives.errno()) + ")");
        }
        int ringFd = (int) fd;
        long sqSize = params.getInt(SQ_OFF_ARRAY) + 4L * params.getInt(PARAMS_SQ_ENTRIES);
        long cqSize = params.getInt(CQ_OFF_CQES) + (long) CQE_SIZE * params.getInt(PARAMS_CQ_ENTRIES);
        long sqesSize = (long) SQE_SIZE * params.getInt(PARAMS_SQ_ENTRIES);
        boolean single = (params.getInt(PARAMS_FEATURES) & FEAT_SINGLE_MMAP) != 0;
        long sq = UringNatives.MAP_FAILED;
        long cq = UringNatives.MAP_FAILED;
        long sqes = UringNatives.MAP_FAILED;
        try {
            if (single) {
                sqSize = cqSize = Math.max(sqSize, cqSize);
            }
            sq = map(ringFd, sqSize, OFF_SQ_RING, "SQ ring");
            cq = single ? sq : map(ringFd, cqSize, OFF_CQ_RING, "CQ ring");
            sqes = map(ringFd, sqesSize, OFF_SQES, "SQE array");
            return new IoUring(ringFd, params, sq, sqSize, cq, cqSize, sqes, sqesSize);
        } catch (IOException e) {
            unmap(sqes, sqesSize);
            if (!single) {
                unmap(cq, cqSize);
            }
            unmap(sq, sqSize);
            UringNatives.close(ringFd);
            throw e;
        }
    }

    /** Submission entries: how many {@link #prepare} calls fit between two {@link #submit} calls. */
    public int sqEntries() {
        return sqEntries;
    }

    /**
     * Completion entries. The kernel (5.5 and later, IORING_FEAT_NODROP) keeps completions that do not
     * fit, but a user that keeps at most this many operations in flight never makes it.
     */
    public int cqEntries() {
        return cqEntries;
    }

    /**
     * Fills the next submission entry, not yet visible to the kernel: {@code opcode} on {@code fd}, with
     * {@code address} and {@code length} (for READV/WRITEV the iovec array and its count), the file
     * {@code offset}, the opcode's flags and the value the completion returns. Submitting side.
     *
     * @return false when every submission entry holds one the kernel has not taken yet: submit first
     */
    public boolean prepare(int opcode, int fd, long address, int length, long offset, int opFlags, long userData) {
        return fill(opcode, 0, fd, address, length, offset, opFlags, userData);
    }

    /**
     * Like {@link #prepare}, on the file registered at {@code index} by {@link #registerFiles}: the kernel
     * then skips looking the descriptor up and taking a reference on the file for every entry.
     */
    public boolean prepareFixed(int opcode, int index, long address, int length, long offset, int opFlags, long userData) {
        return fill(opcode, SQE_FIXED_FILE, index, address, length, offset, opFlags, userData);
    }

    /**
     * Registers {@code fds} as the ring's fixed files, index i naming {@code fds[i]} (io_uring_register
     * IORING_REGISTER_FILES). The ring holds a reference to each file until it is closed: the descriptors
     * may be closed meanwhile, but their files (a TAP queue, a disk) stay open until the ring is. Once per ring.
     *
     * @return 0, or -errno (EBUSY: files are registered already; EMFILE, ENOMEM: over a limit)
     */
    public int registerFiles(int[] fds) {
        Memory table = new Memory(4L * Math.max(1, fds.length));
        for (int i = 0; i < fds.length; i++) {
            table.setInt(4L * i, fds[i]);
        }
        long r = UringNatives.syscall(SYS_IO_URING_REGISTER, ringFd, REGISTER_FILES, Pointer.nativeValue(table), fds.length, 0, 0);
        return r < 0 ? -UringNatives.errno() : 0;
    }

    /**
     * Drops the files {@link #registerFiles} registered (IORING_UNREGISTER_FILES). Closing the ring drops
     * them too, but later, from a kernel worker: a file whose descriptors are all closed (a TAP queue)
     * would outlive {@link #close} by a moment; unregistered first, it is released before this returns
     * if nothing else holds it.
     *
     * @return 0, or -errno (ENXIO: none registered)
     */
    public int unregisterFiles() {
        long r = UringNatives.syscall(SYS_IO_URING_REGISTER, ringFd, UNREGISTER_FILES, 0, 0, 0, 0);
        return r < 0 ? -UringNatives.errno() : 0;
    }

    private boolean fill(int opcode, int sqeFlags, int fd, long address, int length, long offset, int opFlags, long userData) {
        // acquire: the kernel has read the entries up to its head before it publishes the head
        if (sqTail - (int) U32.getAcquire(sqRing, sqHeadOffset) == sqEntries) {
            return false;
        }
        int sqe = (sqTail & sqMask) * SQE_SIZE;
        sqes.put(sqe + SQE_OPCODE_FLAGS_IOPRIO_FD, (byte) opcode);
        sqes.put(sqe + SQE_OPCODE_FLAGS_IOPRIO_FD + 1, (byte) sqeFlags);
        sqes.putShort(sqe + SQE_OPCODE_FLAGS_IOPRIO_FD + 2, (short) 0);
        sqes.putInt(sqe + SQE_OPCODE_FLAGS_IOPRIO_FD + 4, fd);
        sqes.putLong(sqe + SQE_OFF, offset);
        sqes.putLong(sqe + SQE_ADDR, address);
        sqes.putInt(sqe + SQE_LEN_RW_FLAGS, length);
        sqes.putInt(sqe + SQE_LEN_RW_FLAGS + 4, opFlags);
        sqes.putLong(sqe + SQE_USER_DATA, userData);
        sqTail++;
        return true;
    }

    /** Entries prepared that the kernel has not taken yet. Submitting side. */
    public int unsubmitted() {
        return sqTail - (int) U32.getAcquire(sqRing, sqHeadOffset);
    }

    /**
     * Hands every prepared entry to the kernel with one io_uring_enter. Submitting side.
     *
     * @return how many the kernel took, or -errno (EINTR: nothing taken, call again)
     */
    public int submit() {
        return enter(0, 0);
    }

    /**
     * Like {@link #submit}, and waits until at least {@code minComplete} completions are posted (to be
     * read with {@link #reap}). For a ring whose two sides are one thread.
     */
    public int submitAndWait(int minComplete) {
        return enter(minComplete, ENTER_GETEVENTS);
    }

    private int enter(int minComplete, int flags) {
        int toSubmit = unsubmitted();
        // release: the kernel must see the entries filled before it sees the tail that covers them
        U32.setRelease(sqRing, sqTailOffset, sqTail);
        long r = UringNatives.syscall(SYS_IO_URING_ENTER, ringFd, toSubmit, minComplete, flags, 0, 0);
        return r < 0 ? -UringNatives.errno() : (int) r;
    }

    /**
     * Blocks until at least one completion is posted (none may be yet: a signal). Reaping side.
     *
     * @return 0, or -errno (EINTR: interrupted, call again)
     */
    public int awaitCompletions() {
        long r = UringNatives.syscall(SYS_IO_URING_ENTER, ringFd, 0, 1, ENTER_GETEVENTS, 0, 0);
        return r < 0 ? -UringNatives.errno() : 0;
    }

    /**
     * Makes the kernel signal an eventfd for every completion it posts (IORING_REGISTER_EVENTFD), so that
     * an event loop can wait for completions among its other fds (epoll) instead of a thread waiting in
     * io_uring_enter. Completions that finish inside a submitting call signal it too. The ring owns the
     * fd (non-blocking, close-on-exec) and closes it in {@link #close}. Once per ring.
     *
     * @return the eventfd: readable while a signal is pending ({@link #clearCompletionSignal})
     * @throws IOException naming the errno when the kernel refuses
     */
    public int signalCompletions() throws IOException {
        if (completionFd >= 0) {
            throw new IllegalStateException("the ring signals an eventfd already");
        }
        int efd = UringNatives.eventfd(0, UringNatives.EFD_NONBLOCK | UringNatives.EFD_CLOEXEC);
        if (efd < 0) {
            throw new IOException("eventfd failed (" + UringNatives.errnoName(UringNatives.errno()) + ")");
        }
        Memory arg = new Memory(4);
        arg.setInt(0, efd);
        if (UringNatives.syscall(SYS_IO_URING_REGISTER, ringFd, REGISTER_EVENTFD, Pointer.nativeValue(arg), 1, 0, 0) < 0) {
            int errno = UringNatives.errno();
            UringNatives.close(efd);
            throw new IOException("io_uring_register(EVENTFD) failed (" + UringNatives.errnoName(errno) + ")");
        }
        completionCount = new Memory(8);
        completionFd = efd;
        return efd;
    }

    /**
     * Clears the pending signal of the {@link #signalCompletions} eventfd. Reaping side, before
     * {@link #reap}: a completion posted after the clear signals again, so none is left unseen.
     */
    public void clearCompletionSignal() {
        UringNatives.read(completionFd, completionCount, 8); // EAGAIN: nothing pending, as good
    }

    /** Whether completions are posted that {@link #reap} has not passed on yet. Any thread. */
    public boolean hasCompletions() {
        // acquire, both: the head is the reaping side's (released per entry), the tail the kernel's
        return (int) U32.getAcquire(cqRing, cqTailOffset) != (int) U32.getAcquire(cqRing, cqHeadOffset);
    }

    /** Passes every posted completion to {@code sink}, in the order posted; returns how many. Reaping side. */
    public int reap(CompletionSink sink) {
        // acquire: the completion entries are written before the kernel publishes the tail
        int tail = (int) U32.getAcquire(cqRing, cqTailOffset);
        int n = 0;
        for (; cqHead != tail; cqHead++, n++) {
            int cqe = cqesOffset + (cqHead & cqMask) * CQE_SIZE;
            long userData = cqRing.getLong(cqe + CQE_USER_DATA);
            int res = cqRing.getInt(cqe + CQE_RES);
            // release, per entry: the kernel may reuse an entry only after we read it, and the sink may
            // take long (a reaper completing requests) while the kernel posts more
            U32.setRelease(cqRing, cqHeadOffset, cqHead + 1);
            sink.completed(userData, res);
        }
        return n;
    }

    /** The kernel's name for an errno this library or a device's native calls report (EPERM, ENODEV, ...), or "errno N". */
    public static String errnoName(int errno) {
        return UringNatives.errnoName(errno);
    }

    /** Unmaps the rings and closes the ring's fd; operations still in flight are cancelled by the kernel. */
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
        UringNatives.close(ringFd);
        if (completionFd >= 0) {
            UringNatives.close(completionFd);
        }
    }

    private static long map(int fd, long size, long offset, String what) throws IOException {
        long address = UringNatives.mmap(0, size, UringNatives.PROT_READ | UringNatives.PROT_WRITE,
                UringNatives.MAP_SHARED | UringNatives.MAP_POPULATE, fd, offset);
        if (address == UringNatives.MAP_FAILED) {
            throw new IOException("io_uring: mapping its " + what + " failed ("
                    + UringNatives.errnoName(UringNatives.errno()) + ")");
        }
        return address;
    }

    private static void unmap(long address, long size) {
        if (address != UringNatives.MAP_FAILED) {
            UringNatives.munmap(address, size);
        }
    }

    private static ByteBuffer view(long address, long size) {
        return new Pointer(address).getByteBuffer(0, size).order(ByteOrder.nativeOrder());
    }
}
