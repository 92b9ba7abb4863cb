package org.jvhost.engine.instrument;

import org.jvhost.engine.virtq.HostQueue;
import org.jvhost.engine.virtq.SplitQueue;
import org.jvhost.spi.DescriptorChain;

/**
 * Strict mode's checks of one started ring's driver, fed by {@link InstrumentedQueue} (avail index,
 * chains taken and returned) and by the ring's kick handler ({@link #kicked}). Each rule is reported
 * once per ring start here, and once per queue of a connection by the {@link SessionTap} behind
 * {@link Reporter}. Worker only.
 *
 * <h2>Which kicks count as extra</h2>
 * A driver may kick legally after the device suppressed kicks: it read the flags (or avail_event)
 * before the suppression was visible, and its eventfd write arrives later. So a kick is counted only
 * when all of these hold, and the rule errs towards silence:
 * <ol>
 * <li>kicks are suppressed now ({@link HostQueue#kicksSuppressed()}: for a split ring, the host polls,
 *     or VRING_USED_F_NO_NOTIFY is set without EVENT_IDX) and have stayed suppressed since the previous
 *     kick was read (no {@link HostQueue#kickRequests() kick request} in between);</li>
 * <li>it is at least the third eventfd read since the suppression began: the first may still carry
 *     kicks written before it, the second the one late kick of a driver that publishes from one thread
 *     at a time (Linux virtio-net per queue, a DPDK lcore);</li>
 * <li>with EVENT_IDX, fewer than 65535 buffers can have been published since the previous kick, so
 *     avail idx cannot have wrapped onto avail_event (a legal kick).</li>
 * </ol>
 * A driver that publishes from several threads at once could draw a report it does not deserve; no
 * front-end known to us does.
 *
 * <h2>Packed rings</h2>
 * Of the data-path rules, a packed ring's driver is checked here for {@link SpecRule#TX_DEVICE_WRITABLE}
 * and {@link SpecRule#KICK_WHILE_SUPPRESSED}: the device
 * event suppression says DISABLE while the host polls or the device turned kicks off (section 2.8.10),
 * with or without EVENT_IDX, so the EVENT_IDX wrap above does not arise. {@link SpecRule#AVAIL_IDX_BACKWARDS}
 * and {@link SpecRule#AVAIL_IDX_TOO_FAR} are split-ring rules: a packed ring has no avail index. Its own
 * driver rules (buffer ids out of range or reused while outstanding, chains longer than the ring, flags
 * that lie about the wrap counter, nested indirect tables) are checked by the queue itself, strict mode
 * or not, and break the queue with a WARN ({@link org.jvhost.engine.virtq.PackedChainReader}): a buffer
 * id reused while outstanding ({@link SpecRule#BUFFER_REUSED}'s packed form) breaks the queue before
 * this class sees the buffer.
 */
final class RingChecks {
    /** Reports a broken rule, and counts extra kicks. */
    interface Reporter {
        void report(SpecRule rule, String detail);

        void extraKicks(long kicks);
    }

    /** Eventfd reads forgiven after kicks were suppressed (see the class comment). */
    static final int KICK_GRACE_READS = 2;

    private final HostQueue queue;
    /** The queue if it is a split ring, else null: only a split ring has an avail index to check. */
    private final SplitQueue split;
    private final int index;
    private final int size;
    private final boolean transmit;
    private final Reporter reporter;
    private final boolean[] reported = new boolean[SpecRule.values().length];
    /** Heads the device took and has not returned. */
    private final boolean[] outstanding;
    /** The last heads taken, in order, for {@link #unpopped}. */
    private final int[] taken;
    private int takenCount;
    /** Chains taken since the ring started (never decreases), for the EVENT_IDX wrap. */
    private long takenTotal;
    private long takenAtLastKick;
    /** The last avail->idx read. */
    private int lastIdx;
    private boolean suppressedEpoch;
    private int epochRequests;
    private int epochReads;

    RingChecks(HostQueue queue, boolean transmit, Reporter reporter) {
        this.queue = queue;
        this.split = queue instanceof SplitQueue s ? s : null;
        this.index = queue.index();
        this.size = queue.size();
        this.transmit = transmit;
        this.reporter = reporter;
        this.outstanding = new boolean[size];
        this.taken = new int[size];
        this.lastIdx = queue.nextAvail();
    }

    /**
     * Before a pop: avail->idx may only move forward, to at most a ring's worth past the next entry the
     * device takes (virtio 1.2 §2.7.6). The queue itself breaks on the second; this names the rule.
     */
    void checkAvailIdx() {
        if (split == null) {
            return; // a packed ring: no avail index (see the class comment)
        }
        int idx = queue.availIndex();
        if (idx == lastIdx) {
            return;
        }
        int next = queue.nextAvail();
        int ahead = (idx - next) & 0xffff;
        // The queue reads avail->idx again after this check: if the driver published in between, the
        // device took entries past the idx read last time, so that read is behind next (by at most a
        // ring). Moving back means behind the later of the two.
        int lastAhead = ((next - lastIdx) & 0xffff) <= size ? 0 : (lastIdx - next) & 0xffff;
        if (ahead > size) {
            boolean back = ((lastIdx - idx) & 0xffff) < 0x8000;
            report(back ? SpecRule.AVAIL_IDX_BACKWARDS : SpecRule.AVAIL_IDX_TOO_FAR, "avail idx " + idx + " after "
                    + lastIdx + ", the device's next avail index " + next + ", ring size " + size);
        } else if (ahead < lastAhead) {
            report(SpecRule.AVAIL_IDX_BACKWARDS, "avail idx moved back from " + lastIdx + " to " + idx);
        }
        lastIdx = idx;
    }

    /** A chain was taken: its head must be free, and a transmit queue's chain device-readable only. */
    void popped(DescriptorChain chain) {
        int head = chain.head();
        if (outstanding[head]) {
            report(SpecRule.BUFFER_REUSED, "head " + head + " is available again (avail index "
                    + ((queue.nextAvail() - 1) & 0xffff) + ") while the device still holds it");
        }
        if (transmit && chain.writableBytes() > 0) {
            report(SpecRule.TX_DEVICE_WRITABLE, "chain at head " + head + " on transmit queue " + index + " has "
                    + chain.writableBytes() + " device-writable bytes");
        }
        outstanding[head] = true;
        taken[Math.floorMod(takenCount++, size)] = head; // a packed ring's size need not be a power of two
        takenTotal++;
    }

    /** The device put back its last {@code count} chains. */
    void unpopped(int count) {
        for (int i = 0; i < count; i++) {
            outstanding[taken[Math.floorMod(--takenCount, size)]] = false;
        }
    }

    /** The device returned a chain. */
    void used(DescriptorChain chain) {
        outstanding[chain.head()] = false;
    }

    /** The ring's kick eventfd was read: {@code kicks} driver kicks (the eventfd's count). */
    void kicked(long kicks) {
        if (kicks <= 0) {
            return;
        }
        boolean wrapped = split != null && split.eventIdx() && takenTotal - takenAtLastKick + size >= 0xffff;
        takenAtLastKick = takenTotal;
        if (!queue.kicksSuppressed()) {
            suppressedEpoch = false;
            return;
        }
        if (!suppressedEpoch || epochRequests != queue.kickRequests() || wrapped) {
            suppressedEpoch = true;
            epochRequests = queue.kickRequests();
            epochReads = 0;
        }
        if (++epochReads <= KICK_GRACE_READS) {
            return;
        }
        reporter.extraKicks(kicks);
        report(SpecRule.KICK_WHILE_SUPPRESSED, kicks + " kick(s) on queue " + index + " while "
                + (split == null ? "the packed ring's device event suppression said DISABLE (virtio 1.2 §2.8.10)"
                        : split.eventIdx() ? "avail_event was not passed" : "VRING_USED_F_NO_NOTIFY was set")
                + ", " + (epochReads - 1) + " eventfd reads after the suppression began");
    }

    private void report(SpecRule rule, String detail) {
        if (!reported[rule.ordinal()]) {
            reported[rule.ordinal()] = true;
            reporter.report(rule, "queue " + index + ": " + detail);
        }
    }
}
