package org.jvhost.engine.virtq;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The used side of a packed ring for {@link PackedQueue}: the position where the next used descriptor
 * goes, with its wrap counter, and the batch of used descriptors held back until {@link #publish}. The
 * queue keeps the avail side, the buffers outstanding and the broken state; a broken queue calls
 * {@link #discard} rather than {@link #publish}. Worker only; never allocates.
 *
 * <p>Each used descriptor lands in a cache line the driver wrote (the available descriptor it replaces)
 * and may be reading (its next used position), so a store to it waits for the line to come from the
 * driver's CPU. One per frame, between frame copies, those waits come one after another; written
 * together, as DPDK's vhost writes its shadow used ring, a batch's lines are requested side by side.
 */
final class PackedUsedRing {

    private static final VarHandle U16 = MethodHandles.byteBufferViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle U32 = MethodHandles.byteBufferViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle U64 = MethodHandles.byteBufferViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    /** Most used descriptors held back for {@link #publish}: a longer batch is published in parts. */
    static final int MAX_SHADOW = 256;

    private final int size;
    private final long descGpa;
    /** VIRTIO_F_IN_ORDER negotiated: runs of nothing-written buffers are published as one ({@link #add}). */
    private final boolean inOrder;
    private ByteBuffer desc;

    /** Ring position of the next used descriptor, and the used wrap counter. */
    private int usedPos;
    private boolean usedWrap;
    /** Descriptors returned, free-running 16-bit. */
    private int usedCount;

    /** The batch's used descriptors: per entry its ring offset and bytes 8-15 (len, id, flags). */
    private final int[] shadowAt;
    private final long[] shadowWord;
    private int shadowCount;

    PackedUsedRing(int size, long descGpa, boolean inOrder) {
        this.size = size;
        this.descGpa = descGpa;
        this.inOrder = inOrder;
        this.shadowAt = new int[Math.min(size, MAX_SHADOW)];
        this.shadowWord = new long[shadowAt.length];
    }

    /** The descriptor ring, in the queue's current memory. */
    void attach(ByteBuffer ring) {
        desc = ring;
    }

    /** Moves the used position (a restart: nothing is held back then). */
    void setPosition(int pos, boolean wrap) {
        usedPos = pos;
        usedWrap = wrap;
    }

    int position() {
        return usedPos;
    }

    boolean wrap() {
        return usedWrap;
    }

    /** Descriptors returned, free-running modulo 2^16. */
    int count() {
        return usedCount;
    }

    /** Whether used descriptors are held back, not yet written. */
    boolean pending() {
        return shadowCount > 0;
    }

    /**
     * Holds back the used descriptor of buffer {@code id}, which took {@code descriptors} ring entries,
     * at the used position, and moves past those entries.
     *
     * <p>With IN_ORDER, a buffer with nothing written that follows one with nothing written joins its
     * used descriptor instead: that descriptor, at the run's first position, takes this buffer's id,
     * and the driver skips the run's entries (virtio 1.2, 2.8 "In-order use of descriptors"). The used
     * position moves past this buffer's entries either way.
     *
     * @return whether the batch is full: the caller publishes it before the next add
     */
    boolean add(int id, int writtenBytes, int descriptors) {
        int last = shadowCount - 1;
        if (inOrder && writtenBytes == 0 && last >= 0 && (int) shadowWord[last] == 0) {
            shadowWord[last] = shadowWord[last] & ~(0xffffL << 32) | (long) id << 32;
        } else {
            shadowAt[shadowCount] = usedPos * PackedDescriptorLayout.SIZE;
            shadowWord[shadowCount] = Integer.toUnsignedLong(writtenBytes) | (long) id << 32
                    | (long) PackedDescriptorLayout.usedFlags(usedWrap) << 48;
            shadowCount++;
        }
        usedPos += descriptors;
        if (usedPos >= size) {
            usedPos -= size;
            usedWrap = !usedWrap;
        }
        usedCount = (usedCount + descriptors) & 0xffff;
        return shadowCount == shadowAt.length;
    }

    /**
     * Writes the held-back used descriptors to the ring and, if the ring is logged, marks them in
     * {@code log} (after the writes they mark; the caller flushes the log).
     */
    void publish(RingLog log) {
        int n = shadowCount;
        if (n == 0) {
            return;
        }
        // The later entries' len, id and flags (bytes 8-15) in one plain store each, then the first's
        // len and id, then its flags with release: every store of the batch becomes visible before
        // the first entry's flags, which is what the driver polls (it reads used descriptors in ring
        // order, so it reads the others only after that one). A plain store could let the driver see
        // the first entry used while its id or len, or a later entry, are stale. (With IN_ORDER an
        // entry may stand for a run of buffers: add.)
        for (int i = 1; i < n; i++) {
            U64.set(desc, shadowAt[i] + PackedDescriptorLayout.LEN, shadowWord[i]);
        }
        int at = shadowAt[0];
        long first = shadowWord[0];
        U32.set(desc, at + PackedDescriptorLayout.LEN, (int) first);
        U16.set(desc, at + PackedDescriptorLayout.ID, (short) (first >>> 32));
        U16.setRelease(desc, at + PackedDescriptorLayout.FLAGS, (short) (first >>> 48));
        shadowCount = 0;
        if (log != null && log.ringLogged()) {
            for (int i = 0; i < n; i++) {
                log.written(descGpa + shadowAt[i], PackedDescriptorLayout.SIZE);
            }
        }
    }

    /** Drops the held-back used descriptors unwritten (the queue broke). */
    void discard() {
        shadowCount = 0;
    }
}
