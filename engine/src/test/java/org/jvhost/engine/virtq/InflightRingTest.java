package org.jvhost.engine.virtq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/** The inflight record of a split ring: marks, clears at publication, and what a restart finds. */
class InflightRingTest {
    private static final int SIZE = 8;

    private static ByteBuffer region() {
        ByteBuffer b = ByteBuffer.allocateDirect((int) InflightRing.regionSize(SIZE));
        InflightRing.format(b, SIZE);
        return b;
    }

    /** The chains a fresh record over {@code region} would replay, in order. */
    private static int[] replay(ByteBuffer region, int usedIdx, int[] usedRing) {
        InflightRing r = new InflightRing(region, SIZE, 0);
        int n = r.recover(usedIdx, slot -> usedRing[slot]);
        int[] heads = new int[n];
        for (int i = 0; i < n; i++) {
            heads[i] = r.nextResubmit();
        }
        assertFalse(r.hasResubmit());
        return heads;
    }

    @Test
    void layoutIsTheSpecsQueueRegion() {
        assertEquals(192, InflightRing.regionSize(8), "16-byte header + 8 x 16-byte DescStateSplit, to 64");
        assertEquals(16448, InflightRing.regionSize(1024));
        ByteBuffer b = region().order(ByteOrder.LITTLE_ENDIAN);
        InflightRing r = new InflightRing(b, SIZE, 0x1234);
        r.popped(5);
        assertEquals(0x1234, b.getLong(0), "features");
        assertEquals(1, b.getShort(8), "version");
        assertEquals(SIZE, b.getShort(10), "desc_num");
        assertEquals(1, b.get(16 + 16 * 5), "desc[5].inflight");
        assertEquals(1, b.getLong(16 + 16 * 5 + 8), "desc[5].counter");
        r.used(5);
        assertEquals(5, b.getShort(12), "last_batch_head");
        assertEquals(1, b.get(16 + 16 * 5), "still in flight until published");
        r.published(1);
        assertEquals(0, b.get(16 + 16 * 5));
        assertEquals(1, b.getShort(14), "used_idx");
    }

    @Test
    void aRestartReplaysWhatWasInFlightInTheOrderItWasTaken() {
        ByteBuffer b = region();
        InflightRing r = new InflightRing(b, SIZE, 0);
        r.popped(5);
        r.popped(2);
        r.popped(7);
        r.popped(0);
        r.used(2);
        r.published(1);
        assertArrayEquals(new int[] {5, 7, 0}, replay(b, 1, new int[] {2, 0, 0, 0, 0, 0, 0, 0}),
                "by counter, not by head");
    }

    @Test
    void chainsPublishedButNotYetClearedAreNotReplayed() {
        ByteBuffer b = region();
        InflightRing r = new InflightRing(b, SIZE, 0);
        r.popped(3);
        r.popped(4);
        r.popped(6);
        r.used(4);
        r.used(3);
        // killed after used->idx became 2 and before published(2): the used ring lists 4 and 3
        assertArrayEquals(new int[] {6}, replay(b, 2, new int[] {4, 3, 0, 0, 0, 0, 0, 0}));
    }

    @Test
    void replayedChainsKeepTheirCountersAndNewOnesComeAfter() {
        ByteBuffer b = region();
        InflightRing first = new InflightRing(b, SIZE, 0);
        first.popped(1);
        first.popped(2);
        InflightRing second = new InflightRing(b, SIZE, 0);
        assertEquals(2, second.recover(0, slot -> 0));
        assertEquals(1, second.nextResubmit());
        second.popped(3); // a new chain while 2 still waits to be replayed
        // killed again: 1 and 2 are still in flight, 3 was taken after them
        assertArrayEquals(new int[] {1, 2, 3}, replay(b, 0, new int[SIZE]));
    }

    @Test
    void aRegionForAnotherRingSizeIsRefused() {
        ByteBuffer b = ByteBuffer.allocateDirect((int) InflightRing.regionSize(16));
        InflightRing.format(b, 16);
        assertThrows(IllegalArgumentException.class, () -> new InflightRing(b, SIZE, 0));
        ByteBuffer zero = ByteBuffer.allocateDirect((int) InflightRing.regionSize(SIZE));
        assertThrows(IllegalArgumentException.class, () -> new InflightRing(zero, SIZE, 0), "never formatted");
    }

    @Test
    void garbageFromTheFrontendStaysInsideTheRegion() {
        ByteBuffer b = region().order(ByteOrder.LITTLE_ENDIAN);
        for (int head = 0; head < SIZE; head++) {
            b.put(16 + 16 * head, (byte) 0xff);
            b.putLong(16 + 16 * head + 8, -head);
        }
        b.putShort(14, (short) 40000);
        int[] replayed = replay(b, 3, new int[] {99, -1, 7, 7, 7, 7, 7, 7});
        // used_idx 40000 against used->idx 3: the gap is bounded by the ring, every used slot is read once,
        // its id masked (99 -> 3, -1 -> 7): heads 3 and 7 are cleared, nothing outside the region touched
        assertEquals(SIZE - 2, replayed.length);
    }
}
