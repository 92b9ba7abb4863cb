package org.jvhost.engine.virtq;

import org.jvhost.engine.memory.DirtyLog;

/**
 * What one ring writes to guest memory while a migration logs dirty pages (VHOST_F_LOG_ALL), batched:
 * the pages of the bytes devices wrote into used chains, and the range of the used ring the queue
 * wrote, both collected here and ORed into the {@link DirtyLog} at the next {@link #flush} (the used
 * index update), one atomic OR per 64-page word, as DPDK's per-virtqueue log cache does.
 *
 * <p>Used-ring writes are logged at {@code log_guest_addr} (SET_VRING_ADDR with VHOST_VRING_F_LOG), not
 * at the used ring's translated address: spec "Migration", "Modifications to 'used' vring should be
 * marked at offset from log_guest_addr". A page past the end of the log is not marked (the front-end
 * resizes the log with SET_LOG_BASE before it grows guest memory); {@link #pagesBeyondLog()} counts
 * them. Worker only, like the queue.
 */
public final class RingLog {
    /** Distinct 64-page words batched before a flush (DPDK: VHOST_LOG_CACHE_NR). */
    static final int CACHE_WORDS = 32;

    private final DirtyLog log;
    private final long usedLogAddress;
    private final long pages;
    private final long[] words = new long[CACHE_WORDS];
    private final long[] bits = new long[CACHE_WORDS];
    private int cached;
    /** The page marked last, which small buffers written one after another mostly share; -1 after a flush. */
    private long lastPage = -1;
    /** The byte range {@code [usedLow, usedHigh)} of the used ring written since the last flush. */
    private int usedLow = Integer.MAX_VALUE;
    private int usedHigh;
    private long beyondLog;

    /**
     * @param usedLogAddress the used ring's guest address for the log ({@code log_guest_addr}), or -1 if
     *                       the ring was not set up with VHOST_VRING_F_LOG (its used ring is not logged)
     */
    public RingLog(DirtyLog log, long usedLogAddress) {
        this.log = log;
        this.usedLogAddress = usedLogAddress;
        this.pages = log.pages();
    }

    /** The log this ring writes to. */
    public DirtyLog log() {
        return log;
    }

    /** Pages written outside the log's range, which it could not mark. */
    public long pagesBeyondLog() {
        return beyondLog;
    }

    /** Whether the ring's own writes are logged (VHOST_VRING_F_LOG was set for it). */
    boolean ringLogged() {
        return usedLogAddress != -1;
    }

    /** Notes the device wrote the first {@code written} bytes of {@code c}'s writable segments. */
    void chainWritten(SplitDescriptorChain c, int written) {
        int left = written;
        for (int i = c.readableSegments(); left > 0 && i < c.segmentCount(); i++) {
            int n = Math.min(left, c.segmentLength(i));
            written(c.guestAddress(i), n);
            left -= n;
        }
    }

    /** Notes {@code len > 0} bytes written at {@code gpa}. */
    void written(long gpa, long len) {
        long last = (gpa + len - 1) >>> DirtyLog.PAGE_SHIFT;
        for (long page = gpa >>> DirtyLog.PAGE_SHIFT; page <= last; page++) {
            mark(page);
        }
    }

    /** Notes the queue wrote {@code len} bytes at {@code offset} of the used ring. */
    void usedWritten(int offset, int len) {
        usedLow = Math.min(usedLow, offset);
        usedHigh = Math.max(usedHigh, offset + len);
    }

    /** Sets the bits of everything noted since the last flush. */
    void flush() {
        if (usedHigh > usedLow && usedLogAddress != -1) {
            written(usedLogAddress + usedLow, usedHigh - usedLow);
        }
        usedLow = Integer.MAX_VALUE;
        usedHigh = 0;
        flushWords();
    }

    private void flushWords() {
        for (int i = 0; i < cached; i++) {
            log.or(words[i], bits[i]);
        }
        cached = 0;
        lastPage = -1;
    }

    private void mark(long page) {
        if (page == lastPage) {
            return;
        }
        lastPage = page;
        if (Long.compareUnsigned(page, pages) >= 0) {
            beyondLog++;
            return;
        }
        long word = page >>> 6;
        long bit = 1L << (page & 63);
        // newest first: consecutive pages of one buffer share a word
        for (int i = cached - 1; i >= 0; i--) {
            if (words[i] == word) {
                bits[i] |= bit;
                return;
            }
        }
        if (cached == CACHE_WORDS) {
            flushWords();
        }
        words[cached] = word;
        bits[cached++] = bit;
    }
}
