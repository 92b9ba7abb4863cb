package org.jvhost.device.blk;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import org.jvhost.spi.Completion;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.DeviceContext;
import org.jvhost.uring.IoUring;
import org.jvhost.uring.NativeFile;
import org.jvhost.spi.virtio.VirtioBlk;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The disk's reads, writes and flushes through one io_uring: the worker fills a submission entry per
 * request (READV or WRITEV at the request's file offset, on iovecs of the guest's own buffers, so no byte
 * is copied in user space; FSYNC with DATASYNC) and submits a kick's worth with one io_uring_enter
 * ({@link #submitPrepared}). A read or write the page cache can serve completes within that call (the
 * kernel copies inline and punts only what would block, an ext4 buffered write and a flush always, to
 * its io-wq threads): the worker then reaps it at once, so such a request crosses no thread at all. A
 * read the page cache holds whole does not even wait for the kick's batch: {@link #readCached} copies it
 * on the worker at once, so the device publishes it before it starts the next (the driver, on its own
 * CPU, takes a 1 MiB read's first part while the worker copies the rest).
 *
 * <p>The rest are reaped where the host lets the device be woken ({@link #reapOnWorker}): the ring
 * signals an eventfd for each completion, which the worker of the first queue started watches among its
 * other fds, so a punted write goes worker, io-wq, worker, as a thread pool's does (qemu-storage-daemon:
 * main loop, pool thread, main loop), instead of through a reaper thread as well. Without such a host
 * (tests of this class alone) one reaper thread per disk waits in io_uring_enter for completions.
 * Either way no thread is held per request.
 *
 * <p>Bounded: at most {@link #depth()} requests are in flight (one slot each, the ring's completion
 * entries, so the CQ never overflows); a request that finds no free slot is not started here
 * ({@code false}) and the device runs it on its thread pool instead. So is a request of more than
 * {@link #MAX_SEGMENTS} segments (readv's UIO_MAXIOV). A transfer that ends short of the request's
 * length, or fails, gives IOERR.
 *
 * <p>Threads: the submitting calls may come from several workers (one per queue) and take a lock of their
 * own; {@link #completed} runs on whoever reads the CQ, one at a time ({@link #reapAll}): the watching
 * worker or the reaper, or a worker right after its submit. A slot's fields are written before its
 * completion handle is stored (release) and read after it is taken (acquire).
 */
final class UringIo implements AutoCloseable, IoUring.CompletionSink {
    private static final Logger LOG = LoggerFactory.getLogger(UringIo.class);
    /** Submission entries; the kernel gives twice as many completion entries, which bound the slots. */
    static final int SQ_ENTRIES = 128;
    /** The most segments one request may have here (UIO_MAXIOV); longer ones go to the thread pool. */
    static final int MAX_SEGMENTS = IovecArrays.MAX_SEGMENTS;
    /** How long {@link #close} waits for the requests in flight. */
    private static final long CLOSE_WAIT_NANOS = 5_000_000_000L;
    /** User data of the NOP {@link #close} submits to wake the reaper. */
    private static final long STOP = -1L;
    /** Retries of a submission the kernel answers EAGAIN or EBUSY, before the entries wait for the next kick. */
    private static final int MAX_SUBMIT_TRIES = 1000;

    /** What became of one request, for the device's counters. Reaper thread, or a worker. */
    interface Outcome {
        void finished(int type, int bytes, int result);
    }

    private final IoUring ring;
    private final int fd;
    private final Outcome outcome;
    private final String name;
    /** The reaper thread, when the host does not watch the ring's eventfd for us; else null. */
    private Thread reaper;
    /** The worker's watch of the ring's completion eventfd ({@link #reapOnWorker}); else null. */
    private DeviceContext.FdWatch watch;
    private final Object sqLock = new Object();
    /** Held by whoever reads the CQ (one reader at a time): see {@link #reapAll}. */
    private final ReentrantLock reapLock = new ReentrantLock();
    // the slots: a free stack (guarded by itself), and per slot what its completion needs
    private final int[] free;
    private int freeCount;
    private final AtomicReferenceArray<Completion> done;
    private final ByteBuffer[] status;
    private final int[] used;
    private final int[] type;
    private final int[] bytes;
    private final IovecArrays iov;
    private volatile boolean stopSeen;
    /** An io_uring_enter failure was logged (once). Under sqLock. */
    private boolean submitFailed;

    private UringIo(IoUring ring, int fd, Outcome outcome, String name) {
        this.ring = ring;
        this.fd = fd;
        this.outcome = outcome;
        int slots = ring.cqEntries();
        this.free = new int[slots];
        for (int i = 0; i < slots; i++) {
            free[i] = slots - 1 - i;
        }
        this.freeCount = slots;
        this.done = new AtomicReferenceArray<>(slots);
        this.status = new ByteBuffer[slots];
        this.used = new int[slots];
        this.type = new int[slots];
        this.bytes = new int[slots];
        this.iov = new IovecArrays(slots);
        this.name = name;
    }

    /**
     * Opens {@code path} (read-only or for writing) and sets up the ring and its reaper thread.
     *
     * @throws IOException naming why, when the file does not open or the kernel refuses io_uring
     */
    static UringIo open(Path path, boolean readOnly, Outcome outcome) throws IOException {
        return open(path, readOnly, outcome, SQ_ENTRIES, true);
    }

    /** {@link #open} with a ring of {@code sqEntries} submission entries (a test's small one). */
    static UringIo open(Path path, boolean readOnly, Outcome outcome, int sqEntries) throws IOException {
        return open(path, readOnly, outcome, sqEntries, true);
    }

    /**
     * {@link #open}; without {@code reaper}, nothing reaps completions but the submitting workers until
     * {@link #reapOnWorker}, which must come before the first request.
     */
    static UringIo open(Path path, boolean readOnly, Outcome outcome, int sqEntries, boolean reaper)
            throws IOException {
        int fd = NativeFile.open(path, !readOnly);
        try {
            UringIo io = new UringIo(IoUring.create(sqEntries), fd, outcome,
                    path.getFileName() == null ? "blk" : path.getFileName().toString());
            if (reaper) {
                io.startReaper();
            }
            return io;
        } catch (IOException | RuntimeException | Error e) {
            NativeFile.close(fd);
            throw e;
        }
    }

    /**
     * Has the worker of {@code queueGroup} reap completions: the ring signals an eventfd that the host
     * watches ({@link DeviceContext#watchReadable}). Called on that worker (a queue's start), so the
     * registration does not wait for it. Once: a later call (a queue started again) only resumes the watch,
     * which the host pauses while the device is failed and does not resume at the reset that clears the
     * failure, and reaps what completed meanwhile. If the host cannot watch fds or the kernel refuses the
     * eventfd, a reaper thread does it instead (logged).
     */
    synchronized void reapOnWorker(DeviceContext context, int queueGroup) {
        if (watch != null) {
            watch.resume();
            reapAll();
            return;
        }
        if (reaper != null) {
            return;
        }
        try {
            watch = context.watchReadable(ring.signalCompletions(), queueGroup, this::onCompletionSignal);
        } catch (IOException | RuntimeException e) {
            LOG.info("{}: io_uring completions reaped by a thread of their own ({})", name, e.getMessage());
            startReaper();
        }
    }

    private void startReaper() {
        reaper = new Thread(this::reap, "jvhost-blk-uring-" + name);
        reaper.setDaemon(true);
        reaper.start();
    }

    /** The ring's eventfd is readable: completions are posted. The watching worker. */
    private void onCompletionSignal() {
        ring.clearCompletionSignal(); // before reading the CQ: a completion posted after it signals again
        reapAll();
    }

    /** Requests in flight at most. */
    int depth() {
        return free.length;
    }

    /** Reads {@code len} bytes at {@code position} into the chain's writable part from its start. Worker. */
    boolean read(DescriptorChain c, int len, long position, Completion d, ByteBuffer st) {
        return start(IoUring.OP_READV, VirtioBlk.T_IN, c, true, 0, len, position, d, st);
    }

    /**
     * Reads {@code len} bytes at {@code position} into the chain's writable part now, on the calling
     * worker, if the page cache holds all of them ({@link NativeFile#readCached}, which never waits for the
     * disk); the caller then completes the request itself. False if not, with nothing to undo: the
     * request then goes to the ring ({@link #read}), and reads again what part was cached. Worker.
     */
    boolean readCached(DescriptorChain c, int len, long position) {
        int slot = takeSlot(); // for its iovec array
        if (slot < 0) {
            return false;
        }
        try {
            int segments = iov.fill(slot, c, true, 0, len);
            if (segments < 0) {
                return false;
            }
            long r = NativeFile.readCached(fd, iov.address(slot), segments, position);
            if (r != len) {
                return false;
            }
            outcome.finished(VirtioBlk.T_IN, len, len);
            return true;
        } catch (IllegalStateException e) { // memory without addresses: the pool's views can still serve it
            return false;
        } finally {
            releaseSlot(slot);
        }
    }

    /** Writes the chain's readable part {@code from..from+len} at {@code position}. Worker. */
    boolean write(DescriptorChain c, int from, int len, long position, Completion d, ByteBuffer st) {
        return start(IoUring.OP_WRITEV, VirtioBlk.T_OUT, c, false, from, len, position, d, st);
    }

    /** fdatasync. Worker. */
    boolean flush(Completion d, ByteBuffer st) {
        return start(IoUring.OP_FSYNC, VirtioBlk.T_FLUSH, null, false, 0, 0, 0, d, st);
    }

    private boolean start(int op, int t, DescriptorChain c, boolean writable, int from, int len, long position,
            Completion d, ByteBuffer st) {
        int slot = takeSlot();
        if (slot < 0) {
            return false;
        }
        int segments = 0;
        if (c != null) {
            try {
                segments = iov.fill(slot, c, writable, from, len);
            } catch (IllegalStateException e) { // memory without addresses: the pool's views can still serve it
                segments = -1;
            }
            if (segments < 0) {
                releaseSlot(slot);
                return false;
            }
        }
        long iovAddress = c == null ? 0 : iov.address(slot);
        status[slot] = st;
        used[slot] = d.writableBytes();
        type[slot] = t;
        bytes[slot] = len;
        done.set(slot, d); // publishes the fields above to the reaper (see the class comment)
        int flags = op == IoUring.OP_FSYNC ? IoUring.FSYNC_DATASYNC : 0;
        boolean prepared;
        synchronized (sqLock) {
            // a full SQ: hand its entries over first
            prepared = ring.prepare(op, fd, iovAddress, segments, position, flags, slot)
                    || submitLocked() && ring.prepare(op, fd, iovAddress, segments, position, flags, slot);
        }
        if (!prepared) { // the kernel takes no entries: the pool runs this one
            done.set(slot, null);
            status[slot] = null;
            releaseSlot(slot);
        }
        return prepared;
    }

    /**
     * Hands the requests prepared since the last call to the kernel, with one io_uring_enter, then
     * finishes those that completed inside it. Worker.
     */
    void submitPrepared() {
        synchronized (sqLock) {
            submitLocked();
        }
        reapAll();
    }

    /**
     * Finishes every posted completion, unless another thread is reading the CQ: that one looks again
     * after it let go, so a completion this call leaves is not left waiting for the next signal.
     */
    private void reapAll() {
        while (reapLock.tryLock()) {
            try {
                ring.reap(this);
            } finally {
                reapLock.unlock();
            }
            if (!ring.hasCompletions()) {
                return;
            }
        }
    }

    /**
     * Submits until the kernel took every prepared entry: EINTR, EAGAIN (short of memory) and EBUSY
     * (completions to reap first, which the reaper does) are retried, a bounded number of times; any other
     * failure is logged and the entries stay for the next call.
     *
     * @return whether the SQ is empty now
     */
    private boolean submitLocked() {
        for (int tries = 0; ring.unsubmitted() > 0; tries++) {
            int r = ring.submit();
            if (r >= 0) {
                continue;
            }
            if ((r != -IoUring.EINTR && r != -IoUring.EAGAIN && r != -IoUring.EBUSY) || tries == MAX_SUBMIT_TRIES) {
                if (!submitFailed) {
                    submitFailed = true;
                    LOG.error("io_uring_enter failed ({}): {} requests wait in the ring", IoUring.errnoName(-r),
                            ring.unsubmitted());
                }
                return false;
            }
            Thread.yield();
        }
        return true;
    }

    private int takeSlot() {
        synchronized (free) {
            return freeCount == 0 ? -1 : free[--freeCount];
        }
    }

    private void releaseSlot(int slot) {
        synchronized (free) {
            free[freeCount++] = slot;
        }
    }

    private boolean idle() {
        synchronized (free) {
            return freeCount == free.length;
        }
    }

    /** The reaper: waits for completions and finishes their requests until {@link #close}. */
    private void reap() {
        while (!(stopSeen && idle())) {
            int r = ring.awaitCompletions();
            if (r < 0 && r != -IoUring.EINTR) {
                LOG.error("io_uring_enter failed ({}): blk completions stop", IoUring.errnoName(-r));
                return;
            }
            reapAll();
        }
    }

    @Override
    public void completed(long userData, int result) {
        if (userData == STOP) {
            stopSeen = true;
            return;
        }
        int slot = (int) userData;
        Completion d = done.getAndSet(slot, null);
        int t = type[slot];
        int n = bytes[slot];
        ByteBuffer st = status[slot];
        status[slot] = null;
        boolean ok = result == n; // a short transfer is an error too
        outcome.finished(t, n, result);
        st.put(0, (byte) (ok ? VirtioBlk.S_OK : VirtioBlk.S_IOERR));
        int u = used[slot];
        releaseSlot(slot);
        d.complete(u);
    }

    /**
     * Stops reaping once the requests in flight have completed (5 s at most), then closes the ring and the
     * file. If requests are still in flight then, the ring stays mapped (the kernel may still write into
     * guest buffers through it), and the reaper, if any, runs on; the leak is logged.
     */
    @Override
    public synchronized void close() {
        boolean drained = reaper != null ? stopReaper() : unwatchAndDrain();
        if (!drained) {
            LOG.warn("blk: requests still in flight on io_uring after 5 s; its ring and file stay open");
            return;
        }
        ring.close();
        NativeFile.close(fd);
    }

    /** Ends the watch (if any), then reaps here until nothing is in flight, 5 s at most. */
    private boolean unwatchAndDrain() {
        if (watch != null) {
            watch.close();
        }
        long end = System.nanoTime() + CLOSE_WAIT_NANOS;
        while (true) {
            reapAll();
            if (idle()) {
                return true;
            }
            if (System.nanoTime() > end) {
                return false;
            }
            LockSupport.parkNanos(1_000_000);
        }
    }

    /** Has the reaper stop once nothing is in flight (a NOP marks the end), and waits for it, 5 s at most. */
    private boolean stopReaper() {
        synchronized (sqLock) {
            if (!(ring.prepare(IoUring.OP_NOP, -1, 0, 0, 0, 0, STOP)
                    || submitLocked() && ring.prepare(IoUring.OP_NOP, -1, 0, 0, 0, 0, STOP))) {
                LOG.warn("blk: io_uring takes no entries; its ring and file stay open");
                return false;
            }
            submitLocked();
        }
        try {
            reaper.join(CLOSE_WAIT_NANOS / 1_000_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return !reaper.isAlive();
    }
}
