package org.jvhost.engine.virtq;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.function.IntUnaryOperator;

/**
 * The inflight record of one split ring (spec "Inflight I/O tracking"): in memory the front-end keeps
 * across a restart of the back-end, which chains the device has taken and not yet returned, so that a
 * restarted back-end hands them to the device again, in the order they were first taken.
 *
 * <p>The region of one queue (the spec's {@code QueueRegionSplit}), little endian, each queue's region
 * starting on a {@link #ALIGNMENT}-byte boundary of the file ({@link #regionSize}):
 * <pre>
 *  0               8       10      12      14      16
 *  +---------------+-------+-------+-------+-------+
 *  |   features    |version|desc_n | last_b|used_ix|   version 1, desc_num = ring size,
 *  +---------------+-------+-------+-------+-------+   last_batch_head, used_idx
 *  16 + 16 * head: DescStateSplit of the chain whose head is {@code head}
 *  0   1                       6       8               16
 *  +---+-----------------------+-------+---------------+
 *  |inf|      padding (5)      | next  |    counter    |   inflight 0/1, next (unused: no batching
 *  +---+-----------------------+-------+---------------+   lists), counter: order of the first pop
 * </pre>
 *
 * <h2>Protocol, per chain</h2>
 * pop: write its counter, then set inflight (a release store). addUsed: note the head (last_batch_head,
 * and in a private list). publishUsed: after the release store of used->idx, clear inflight of every
 * noted head, then store used_idx (all release stores, so a kill at any instruction leaves memory in
 * this order). A restart ({@link #recover}) finds chains published but not cleared by comparing
 * used_idx with used->idx, and clears the ones the used ring lists between the two: a batch, not only
 * last_batch_head as libvhost-user does, since jvhost publishes several used entries at once.
 *
 * <p>Worker only, like its queue; the region is never read by the front-end while the back-end runs.
 * A hostile front-end can only write garbage into its own copy: heads are masked by the ring size and
 * recovery is bounded by it.
 */
public final class InflightRing {
    /** Each queue's region starts on a 64-byte boundary (as libvhost-user lays it out). */
    public static final int ALIGNMENT = 64;
    public static final int VERSION = 1;
    private static final int FEATURES = 0;
    private static final int VERSION_AT = 8;
    private static final int DESC_NUM = 10;
    private static final int LAST_BATCH_HEAD = 12;
    private static final int USED_IDX = 14;
    private static final int HEADER = 16;
    private static final int DESC = 16;
    private static final int DESC_INFLIGHT = 0;
    private static final int DESC_COUNTER = 8;

    private static final VarHandle U16 = MethodHandles.byteBufferViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);

    private final ByteBuffer region;
    private final int size;
    /** Heads returned with addUsed and not yet published. */
    private final int[] unpublished;
    private int unpublishedCount;
    /** The next counter to give a chain. */
    private long counter = 1;
    /** Chains in flight at the restart, by counter, handed to the device before new ones. */
    private int[] resubmit = new int[0];
    private int resubmitNext;

    /** The bytes of one queue's region for a ring of {@code queueSize}, rounded up to {@link #ALIGNMENT}. */
    public static long regionSize(int queueSize) {
        long bytes = HEADER + (long) DESC * queueSize;
        return (bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    }

    /** Writes an empty record for a ring of {@code queueSize} into a zeroed {@code region}. */
    public static void format(ByteBuffer region, int queueSize) {
        region.order(ByteOrder.LITTLE_ENDIAN).putShort(VERSION_AT, (short) VERSION).putShort(DESC_NUM, (short) queueSize);
    }

    /**
     * The record of a ring of {@code size} in {@code region} ({@link #regionSize} bytes at least).
     *
     * @throws IllegalArgumentException if the region was written for another ring size or version
     */
    public InflightRing(ByteBuffer region, int size, long features) {
        this.region = region.order(ByteOrder.LITTLE_ENDIAN);
        this.size = size;
        this.unpublished = new int[size];
        int version = Short.toUnsignedInt(region.getShort(VERSION_AT));
        int descNum = Short.toUnsignedInt(region.getShort(DESC_NUM));
        if (version != VERSION || descNum != size) {
            throw new IllegalArgumentException("inflight region holds version " + version + " for " + descNum
                    + " descriptors, expected version " + VERSION + " for a ring of " + size);
        }
        region.putLong(FEATURES, features);
    }

    /**
     * After a (re)start: clears the chains the used ring shows were published before the back-end
     * stopped but are still marked, and lines up the ones still in flight for {@link #nextResubmit}.
     *
     * @param usedIdx used->idx as the ring holds it now
     * @param usedId  the head id in used ring slot {@code i} (already masked by the ring size)
     * @return how many chains are in flight: the ring's next avail index is {@code usedIdx} plus this
     */
    public int recover(int usedIdx, IntUnaryOperator usedId) {
        int recorded = Short.toUnsignedInt(region.getShort(USED_IDX));
        int gap = (usedIdx - recorded) & 0xffff;
        for (int i = 0; i < Math.min(gap, size); i++) {
            clear(usedId.applyAsInt((recorded + i) & (size - 1)) & (size - 1));
        }
        U16.setRelease(region, USED_IDX, (short) usedIdx);
        long[] byCounter = new long[size];
        int n = 0;
        for (int head = 0; head < size; head++) {
            if (region.get(desc(head) + DESC_INFLIGHT) != 0) {
                long c = region.getLong(desc(head) + DESC_COUNTER);
                // counter in the high bits, head in the low 16: sorting orders by counter, then head
                byCounter[n++] = (c << 16) | head;
                counter = Math.max(counter, c + 1);
            }
        }
        Arrays.sort(byCounter, 0, n);
        resubmit = new int[n];
        for (int i = 0; i < n; i++) {
            resubmit[i] = (int) (byCounter[i] & 0xffff);
        }
        resubmitNext = 0;
        return n;
    }

    /** Whether chains in flight at the restart wait to be handed to the device again. */
    public boolean hasResubmit() {
        return resubmitNext < resubmit.length;
    }

    /** How many such chains are left. */
    public int resubmitCount() {
        return resubmit.length - resubmitNext;
    }

    /** The head of the next chain to hand again (it stays marked in flight with its first counter). */
    public int nextResubmit() {
        return resubmit[resubmitNext++];
    }

    /** The device took the chain {@code head} from the avail ring. */
    public void popped(int head) {
        int at = desc(head);
        region.putLong(at + DESC_COUNTER, counter++);
        setRelease(at + DESC_INFLIGHT, (byte) 1); // after its counter: a marked chain always has one
    }

    /** The device returned chain {@code head}; it stays marked until published. */
    public void used(int head) {
        region.putShort(LAST_BATCH_HEAD, (short) head);
        if (unpublishedCount < unpublished.length) {
            unpublished[unpublishedCount++] = head;
        }
    }

    /** used->idx is now {@code usedIdx} (after its release store): the returned chains are done. */
    public void published(int usedIdx) {
        for (int i = 0; i < unpublishedCount; i++) {
            clear(unpublished[i]);
        }
        unpublishedCount = 0;
        U16.setRelease(region, USED_IDX, (short) usedIdx);
    }

    private void clear(int head) {
        setRelease(desc(head) + DESC_INFLIGHT, (byte) 0);
    }

    private void setRelease(int at, byte value) {
        // a release fence, then the byte: the stores before it (used->idx, the counter) stay before it
        VarHandle.releaseFence();
        region.put(at, value);
    }

    private static int desc(int head) {
        return HEADER + DESC * head;
    }
}
