package org.jvhost.device.net;

import java.io.IOException;
import java.util.Arrays;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The io_uring of each TAP queue ({@link IovecRing}), or none: with uring=auto a kernel that refuses
 * io_uring (ENOSYS, or EPERM from the kernel.io_uring_disabled sysctl or a container's seccomp filter)
 * means one writev or readv per frame, logged once. TX and RX of a queue run on one worker, one batch at
 * a time, so they share its ring. A queue's ring is used by its pair's worker only.
 */
final class TapRings implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(TapRings.class);

    private final String name;
    /** Per queue; null: one call per frame. */
    private final IovecRing[] rings;

    private TapRings(String name, IovecRing[] rings) {
        this.name = name;
        this.rings = rings;
    }

    /**
     * One ring per TAP queue, {@code fds[q]} registered as ring q's fixed file.
     *
     * @throws IOException with uring=on when the kernel refuses io_uring, naming the errno
     */
    static TapRings create(String name, int[] fds, NetConfig.Uring uring) throws IOException {
        int queues = fds.length;
        IovecRing[] rings = new IovecRing[queues];
        if (uring == NetConfig.Uring.OFF) {
            LOG.info("TAP {}: TX writes and RX reads one frame per writev and readv (uring=off)", name);
            return new TapRings(name, rings);
        }
        try {
            for (int q = 0; q < queues; q++) {
                rings[q] = IovecRing.create(Math.max(PairDataPath.TX_BATCH, RxBatch.MAX_SLOTS));
                int errno = rings[q].registerFile(fds[q]);
                if (errno != 0) {
                    LOG.info("TAP {}: queue {}'s ring refused the TAP as a fixed file ({}); its entries name the descriptor",
                            name, q, TapNatives.errnoName(errno));
                }
            }
            LOG.info("TAP {}: TX writes and RX reads batches of up to {} and {} frames through io_uring ({} {})", name,
                    PairDataPath.TX_BATCH, RxBatch.MAX_SLOTS, queues, queues == 1 ? "ring" : "rings, one per queue");
            return new TapRings(name, rings);
        } catch (IOException e) {
            new TapRings(name, rings).close();
            if (uring == NetConfig.Uring.ON) {
                throw new IOException("TAP " + name + ": uring=on, but " + e.getMessage()
                        + "; use uring=auto or uring=off to move one frame per writev or readv");
            }
            LOG.info("TAP {}: {}; TX writes and RX reads one frame per writev and readv (uring=auto)", name,
                    e.getMessage());
            return new TapRings(name, new IovecRing[queues]);
        }
    }

    /** True if queue 0 has a ring (all queues do, or none, until an enter fails). */
    boolean any() {
        return rings.length > 0 && rings[0] != null;
    }

    /**
     * Writes or reads a batch on queue {@code queue} (file descriptor {@code fd}) through its ring, as
     * {@link Tap#writeFrames} and {@link Tap#readFrames} specify.
     *
     * @return false if the queue has no ring: the caller moves the frames one call each. A ring whose
     *         io_uring_enter fails (never seen: it would take a kernel that allows setup but not enter),
     *         or that refuses RWF_NOWAIT reads, is closed, and the frames it did not take go one call each
     *         from here; the queue does so from now on.
     */
    boolean batch(boolean write, int queue, int fd, long iov, int[] firsts, int[] counts, int frames, long[] results) {
        IovecRing ring = rings[queue];
        if (ring == null) {
            return false;
        }
        int errno = write ? ring.writev(fd, iov, firsts, counts, frames, results)
                : ring.readv(fd, iov, firsts, counts, frames, results);
        if (!write && frames > 0 && results[0] == -TapNatives.EOPNOTSUPP) {
            LOG.warn("TAP {}: the kernel refuses RWF_NOWAIT reads of a TAP through io_uring; queue {} moves one frame"
                    + " per writev or readv from now on", name, queue);
            Arrays.fill(results, 0, frames, IovecRing.NOT_SUBMITTED);
        } else if (errno != 0) {
            LOG.warn("TAP {}: io_uring_enter failed ({}); queue {} moves one frame per writev or readv from now on",
                    name, TapNatives.errnoName(errno), queue);
        } else {
            return true;
        }
        rings[queue] = null;
        ring.close();
        for (int i = 0; i < frames; i++) {
            if (results[i] == IovecRing.NOT_SUBMITTED) {
                long at = TapNatives.iovecAt(iov, firsts[i]);
                long n = write ? TapNatives.writev(fd, at, counts[i]) : TapNatives.readv(fd, at, counts[i]);
                results[i] = n >= 0 ? n : -TapNatives.errno();
            }
        }
        return true;
    }

    @Override
    public void close() {
        for (int q = 0; q < rings.length; q++) {
            if (rings[q] != null) {
                rings[q].close();
                rings[q] = null;
            }
        }
    }
}
