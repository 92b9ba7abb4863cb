package org.jvhost.engine.virtq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.testkit.CountingNotifier;
import org.jvhost.testkit.FakeGuestMemory;
import org.jvhost.testkit.MockSplitQueue;
import org.jvhost.testkit.MockSplitQueue.UsedElement;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The engine's split queue driven through the test kit's driver-side mock, well-behaved drivers. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class SplitQueueTest {
    private static final long EVENT_IDX = VirtioFeatures.RING_EVENT_IDX;
    private static final long INDIRECT = VirtioFeatures.RING_INDIRECT_DESC;

    private final MockSplitQueue driver = MockSplitQueue.create(8);
    private final CountingNotifier calls = new CountingNotifier();

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    @Test
    void popSplitsReadableAndWritablePartsInOrder() {
        SplitQueue q = driver.deviceQueue(0, calls);
        int head = driver.addChain(new byte[][] {bytes("hello "), bytes("world")}, new int[] {3, 5});
        DescriptorChain c = q.newChain();
        assertTrue(q.pop(c));
        assertEquals(head, c.head());
        assertEquals(11, c.readableBytes());
        assertEquals(8, c.writableBytes());
        assertEquals(4, c.segmentCount());
        assertEquals(2, c.readableSegments());
        assertEquals(6, c.segmentLength(0));
        assertTrue(c.segmentAddress(0) != 0, "fake memory over direct buffers has native addresses");
        byte[] all = new byte[11];
        assertEquals(11, c.read(0, all, 0, 100));
        assertEquals("hello world", new String(all, StandardCharsets.US_ASCII));
        byte[] mid = new byte[4];
        assertEquals(4, c.read(4, mid, 0, 4), "a read spanning two segments");
        assertEquals("o wo", new String(mid, StandardCharsets.US_ASCII));
        assertEquals(0, c.read(11, mid, 0, 4), "offset at the end");
        assertEquals(0, c.read(-1, mid, 0, 4));
        assertFalse(q.pop(c), "ring drained");
    }

    @Test
    void writeSpansSegmentsAndStopsAtTheEnd() {
        SplitQueue q = driver.deviceQueue(0, calls);
        int head = driver.addChain(new byte[][] {bytes("x")}, new int[] {3, 5});
        DescriptorChain c = q.newChain();
        assertTrue(q.pop(c));
        assertEquals(5, c.write(1, bytes("ABCDEFG"), 0, 5));
        assertEquals(2, c.write(6, bytes("YZ!"), 0, 3), "clamped at writableBytes");
        assertEquals(0, c.write(8, bytes("Q"), 0, 1));
        q.addUsed(c, 8);
        q.publishUsed();
        assertEquals(1, driver.usedIdx());
        UsedElement e = driver.pollUsed();
        assertEquals(new UsedElement(head, 8), e);
        byte[] got = driver.writtenBytes(e);
        assertArrayEquals(bytes("ABCDEYZ"), Arrays.copyOfRange(got, 1, 8));
    }

    /**
     * Used elements are held back until publishUsed, at most {@link SplitQueue#MAX_SHADOW} of them: a
     * longer batch is written, and used->idx moved, in parts, every id and length right.
     */
    /**
     * IN_ORDER: a run of chains the device wrote nothing into is one used element at the run's first
     * slot carrying the run's last head, used->idx still counting each chain; a chain with bytes written
     * keeps its own element. Without IN_ORDER every chain has its element.
     */
    @Test
    void inOrderPublishesARunOfUnwrittenChainsAsOneElement() {
        int[] written = {0, 0, 0, 4, 0};
        int[] heads = usedAfterOneBatch(driver, VirtioFeatures.IN_ORDER, written);
        assertEquals(written.length, driver.usedIdx(), "used->idx counts every chain");
        assertEquals(new UsedElement(heads[2], 0), driver.usedElement(0), "the run 0-2 is one element with the last head");
        assertEquals(new UsedElement(0, 0), driver.usedElement(1), "slot 1 is not written");
        assertEquals(new UsedElement(0, 0), driver.usedElement(2), "slot 2 is not written");
        assertEquals(new UsedElement(heads[3], 4), driver.usedElement(3));
        assertEquals(new UsedElement(heads[4], 0), driver.usedElement(4));

        MockSplitQueue plain = MockSplitQueue.create(8);
        int[] plainHeads = usedAfterOneBatch(plain, 0, written);
        for (int i = 0; i < written.length; i++) {
            assertEquals(new UsedElement(plainHeads[i], written[i]), plain.usedElement(i), "without IN_ORDER");
        }
    }

    /** One chain per entry of {@code written} (a readable byte, 4 writable), used with that many bytes, published. */
    private int[] usedAfterOneBatch(MockSplitQueue d, long features, int[] written) {
        SplitQueue q = d.deviceQueue(features, calls);
        DescriptorChain c = q.newChain();
        int[] heads = new int[written.length];
        for (int i = 0; i < written.length; i++) {
            heads[i] = d.addChain(new byte[][] {bytes("t")}, new int[] {4});
        }
        for (int i = 0; i < written.length; i++) {
            assertTrue(q.pop(c));
            q.addUsed(c, written[i]);
        }
        q.publishUsed();
        assertFalse(q.isBroken());
        return heads;
    }

    @Test
    void aBatchLongerThanTheShadowIsPublishedInParts() {
        MockSplitQueue big = MockSplitQueue.create(4 * SplitQueue.MAX_SHADOW); // two descriptors per chain
        SplitQueue q = big.deviceQueue(0, calls);
        int n = SplitQueue.MAX_SHADOW + 44;
        int[] heads = new int[n];
        DescriptorChain c = q.newChain();
        for (int i = 0; i < n; i++) {
            heads[i] = big.addChain(new byte[][] {bytes("f" + i)}, new int[] {8});
            assertTrue(q.pop(c));
            q.addUsed(c, i % 9);
            if (i == SplitQueue.MAX_SHADOW - 2) {
                assertEquals(0, big.usedIdx(), "held back until the shadow is full");
            }
        }
        assertEquals(SplitQueue.MAX_SHADOW, big.usedIdx(), "the full shadow, published");
        q.publishUsed();
        assertEquals(n, big.usedIdx());
        for (int i = 0; i < n; i++) {
            assertEquals(new UsedElement(heads[i], i % 9), big.pollUsed(), "element " + i);
        }
    }

    @Test
    void copyToMovesBytesBetweenChainsAcrossSegmentBoundaries() {
        SplitQueue q = driver.deviceQueue(0, calls);
        driver.addChain(new byte[][] {bytes("0123"), bytes("456"), bytes("789")}, new int[0]);
        int rx = driver.addChain(new byte[0][], new int[] {2, 2, 6});
        DescriptorChain src = q.newChain();
        DescriptorChain dst = q.newChain();
        assertTrue(q.pop(src));
        assertTrue(q.pop(dst));
        assertEquals(8, src.copyTo(2, dst, 1, 100), "limited by the source: 10 - 2 bytes");
        q.addUsed(dst, 9);
        q.publishUsed();
        driver.pollUsed();
        assertArrayEquals(bytes("23456789"), Arrays.copyOfRange(driver.writtenBytes(rx, 9), 1, 9));
        assertEquals(3, src.copyTo(0, dst, 7, 100), "limited by the destination: 10 - 7 bytes");
        assertEquals(0, src.copyTo(10, dst, 0, 5));
    }

    @Test
    void copyToAForeignChainGoesThroughScratch() {
        SplitQueue q = driver.deviceQueue(0, calls);
        driver.addChain(new byte[][] {bytes("abcdefgh")}, new int[0]);
        DescriptorChain src = q.newChain();
        assertTrue(q.pop(src));
        RecordingChain foreign = new RecordingChain(5);
        assertEquals(5, src.copyTo(1, foreign, 0, 100));
        assertArrayEquals(bytes("bcdef"), foreign.data);
    }

    @Test
    void indirectChainIsFlattened() {
        SplitQueue q = driver.deviceQueue(INDIRECT, calls);
        int head = driver.addIndirectChain(new byte[][] {bytes("abc"), bytes("de")}, new int[] {4});
        DescriptorChain c = q.newChain();
        assertTrue(q.pop(c));
        assertEquals(head, c.head());
        assertEquals(5, c.readableBytes());
        assertEquals(4, c.writableBytes());
        byte[] r = new byte[5];
        c.read(0, r, 0, 5);
        assertArrayEquals(bytes("abcde"), r);
        c.write(0, bytes("WXYZ"), 0, 4);
        q.addUsed(c, 4);
        q.publishUsed();
        assertArrayEquals(bytes("WXYZ"), driver.writtenBytes(driver.pollUsed()));
    }

    @Test
    void zeroLengthDescriptorsAreSkipped() {
        SplitQueue q = driver.deviceQueue(0, calls);
        driver.addChain(new byte[][] {new byte[0], bytes("ab"), new byte[0]}, new int[] {0, 4});
        DescriptorChain c = q.newChain();
        assertTrue(q.pop(c));
        assertEquals(2, c.segmentCount());
        assertEquals(1, c.readableSegments());
        assertEquals(4, c.writableBytes());
    }

    @Test
    void usedIndexIsReadFromTheRingAtConstruction() {
        driver.setUsedIdx(0xfffe); // a ring left by a previous driver instance, about to wrap
        SplitQueue q = driver.deviceQueue(0, calls);
        assertEquals(0xfffe, q.nextUsed());
        DescriptorChain c = q.newChain();
        for (int i = 0; i < 3; i++) {
            int head = driver.addChain(new byte[0][], new int[] {16});
            assertTrue(q.pop(c));
            q.addUsed(c, i);
            q.publishUsed();
            assertEquals(new UsedElement(head, i), driver.pollUsed());
        }
        assertEquals(1, driver.usedIdx(), "wrapped past 2^16");
        assertEquals(1, q.nextUsed());
    }

    @Test
    void nextAvailFromSetVringBaseIsHonoured() {
        driver.setAvailIdx(100);
        int head = driver.addChain(new byte[][] {bytes("z")}, new int[0]);
        SplitQueue q = driver.deviceQueue(0, 0, 100, calls);
        DescriptorChain c = q.newChain();
        assertTrue(q.pop(c));
        assertEquals(head, c.head());
        assertEquals(101, q.nextAvail());
    }

    @Test
    void unpopPutsBackTheLastChains() {
        SplitQueue q = driver.deviceQueue(0, calls);
        int a = driver.addChain(new byte[][] {bytes("a")}, new int[0]);
        int b = driver.addChain(new byte[][] {bytes("b")}, new int[0]);
        DescriptorChain c = q.newChain();
        assertTrue(q.pop(c));
        assertTrue(q.pop(c));
        assertEquals(0, q.availableCount());
        q.unpop(1);
        assertEquals(1, q.availableCount());
        assertTrue(q.pop(c));
        assertEquals(b, c.head());
        q.unpop(2);
        assertTrue(q.pop(c));
        assertEquals(a, c.head());
        assertThrows(IllegalArgumentException.class, () -> q.unpop(2));
        q.addUsed(c, 0);
        assertThrows(IllegalArgumentException.class, () -> q.unpop(1), "a returned chain cannot be unpopped");
    }

    @Test
    void addUsedRejectsMoreBytesThanTheChainCanHold() {
        SplitQueue q = driver.deviceQueue(0, calls);
        driver.addChain(new byte[][] {bytes("a")}, new int[] {4});
        DescriptorChain c = q.newChain();
        assertTrue(q.pop(c));
        assertThrows(IllegalArgumentException.class, () -> q.addUsed(c, 5));
        assertThrows(IllegalArgumentException.class, () -> q.addUsed(c, -1));
        assertEquals(0, driver.usedIdx());
    }

    @Test
    void withoutEventIdxNoInterruptSuppressesCalls() {
        SplitQueue q = driver.deviceQueue(0, calls);
        DescriptorChain c = q.newChain();
        driver.addChain(new byte[][] {bytes("a")}, new int[0]);
        assertTrue(q.pop(c));
        q.addUsed(c, 0);
        assertTrue(q.signalUsed());
        assertEquals(1, calls.count());
        assertFalse(q.signalUsed(), "nothing new since the last call");
        driver.setAvailFlags(AvailRingLayout.F_NO_INTERRUPT);
        driver.addChain(new byte[][] {bytes("b")}, new int[0]);
        assertTrue(q.pop(c));
        q.addUsed(c, 0);
        assertFalse(q.signalUsed());
        assertEquals(1, calls.count());
        assertEquals(2, driver.usedIdx(), "published even when not signalled");
    }

    @Test
    void aRestartedQueueSignalsForUsedEntriesTheDriverWasNeverToldAbout() {
        // a previous back-end published used entry 0 and was killed before it wrote the call eventfd
        driver.setUsedIdx(1);
        driver.setUsedEvent(0); // the driver still waits for used->idx to pass 0
        SplitQueue q = driver.deviceQueue(EVENT_IDX, calls);
        DescriptorChain c = q.newChain();
        driver.addChain(new byte[][] {bytes("a")}, new int[0]);
        assertTrue(q.pop(c));
        q.addUsed(c, 0);
        assertTrue(q.signalUsed(), "used 1 -> 2: the driver was never told about entry 0");
        assertEquals(1, calls.count());
    }

    @Test
    void eventIdxSignalsOnlyWhenUsedEventIsPassed() {
        SplitQueue q = driver.deviceQueue(EVENT_IDX, calls);
        DescriptorChain c = q.newChain();
        driver.setUsedEvent(2); // wake me when used->idx passes 2, i.e. the third element
        driver.setAvailFlags(AvailRingLayout.F_NO_INTERRUPT); // ignored with EVENT_IDX
        for (int i = 0; i < 4; i++) {
            driver.addChain(new byte[][] {bytes("a")}, new int[0]);
        }
        assertTrue(q.pop(c));
        q.addUsed(c, 0);
        assertFalse(q.signalUsed(), "used 0 -> 1 does not pass used_event 2");
        assertTrue(q.pop(c));
        q.addUsed(c, 0);
        assertFalse(q.signalUsed(), "used 1 -> 2 does not pass used_event 2");
        assertTrue(q.pop(c));
        q.addUsed(c, 0);
        assertTrue(q.signalUsed(), "used 2 -> 3 passes used_event 2");
        assertEquals(1, calls.count());
        assertTrue(q.pop(c));
        q.addUsed(c, 0);
        assertFalse(q.signalUsed(), "used_event is behind: the driver has not asked again");
        driver.setUsedEvent(3);
        driver.addChain(new byte[][] {bytes("a")}, new int[0]);
        assertTrue(q.pop(c));
        q.addUsed(c, 0);
        assertFalse(q.signalUsed(), "4 -> 5: used_event 3 was passed in an earlier batch");
    }

    /**
     * A guest whose barriers do nothing (TCG, one vCPU) wrote used_event after signalUsed read it, and
     * read used->idx before our store reached it: it sleeps. The worker's second look sends what it asks for.
     */
    @Test
    void anInterruptSkippedBeforeTheDriverAskedIsSentByTheSecondLook() {
        SplitQueue q = driver.deviceQueue(EVENT_IDX, calls);
        DescriptorChain c = q.newChain();
        assertFalse(q.signalIfMissed(), "nothing was skipped");
        driver.setUsedEvent(4);
        useOne(q, c);
        useOne(q, c);
        assertFalse(q.signalUsed(), "used 0 -> 2 does not pass used_event 4");
        assertFalse(q.signalIfMissed(), "the driver asks about entry 4, not published yet");
        driver.setUsedEvent(1); // the late request: entry 1 is in the ring already
        assertTrue(q.signalIfMissed(), "owed: the driver waits for an entry already published");
        assertEquals(1, calls.count());
        assertFalse(q.signalIfMissed(), "sent once");
    }

    @Test
    void theSecondLookLeavesADriverThatSawEverythingAlone() {
        SplitQueue q = driver.deviceQueue(EVENT_IDX, calls);
        DescriptorChain c = q.newChain();
        driver.setUsedEvent(5);
        useOne(q, c);
        useOne(q, c);
        assertFalse(q.signalUsed(), "used 0 -> 2 does not pass used_event 5");
        driver.setUsedEvent(2); // consumed both, asks about the next one
        assertFalse(q.signalIfMissed(), "nothing published that the driver still waits for");
        driver.setUsedEvent(1);
        assertTrue(q.signalIfMissed(), "the skip stayed on record until an interrupt was owed");
        assertEquals(1, calls.count());
    }

    @Test
    void withoutEventIdxTheSecondLookFollowsTheFlags() {
        SplitQueue q = driver.deviceQueue(0, calls);
        DescriptorChain c = q.newChain();
        driver.setAvailFlags(AvailRingLayout.F_NO_INTERRUPT);
        useOne(q, c);
        assertFalse(q.signalUsed(), "interrupts off");
        assertFalse(q.signalIfMissed(), "still off: a polling driver is not interrupted");
        driver.setAvailFlags(0);
        assertTrue(q.signalIfMissed(), "turned on after our look: the skipped interrupt is sent");
        assertFalse(q.signalIfMissed());
        assertEquals(1, calls.count());
    }

    private void useOne(SplitQueue q, DescriptorChain c) {
        driver.addChain(new byte[][] {bytes("a")}, new int[0]);
        assertTrue(q.pop(c));
        q.addUsed(c, 0);
    }

    @Test
    void eventIdxBatchCrossingUsedEventSignalsOnce() {
        SplitQueue q = driver.deviceQueue(EVENT_IDX, calls);
        DescriptorChain c = q.newChain();
        driver.setUsedEvent(1);
        for (int i = 0; i < 3; i++) {
            driver.addChain(new byte[][] {bytes("a")}, new int[0]);
            assertTrue(q.pop(c));
            q.addUsed(c, 0);
        }
        assertTrue(q.signalUsed(), "used 0 -> 3 crosses used_event 1");
        assertEquals(1, calls.count());
    }

    @Test
    void needEventMatchesTheSpecFormulaAcrossWrap() {
        assertTrue(SplitEventSuppression.needEvent(0xffff, 0, 0xfffe));
        assertFalse(SplitEventSuppression.needEvent(0, 0, 0xfffe));
        assertTrue(SplitEventSuppression.needEvent(0, 1, 0));
        assertFalse(SplitEventSuppression.needEvent(5, 5, 0));
    }

    @Test
    void disableAndEnableNotificationsWithoutEventIdx() {
        SplitQueue q = driver.deviceQueue(0, calls);
        q.disableNotifications();
        assertEquals(UsedRingLayout.F_NO_NOTIFY, driver.usedFlags());
        assertFalse(q.enableNotifications(), "nothing arrived");
        assertEquals(0, driver.usedFlags());
        q.disableNotifications();
        driver.addChain(new byte[][] {bytes("a")}, new int[0]);
        assertTrue(q.enableNotifications(), "a buffer arrived while kicks were off: process again");
        DescriptorChain c = q.newChain();
        assertTrue(q.pop(c));
        assertFalse(q.enableNotifications());
    }

    @Test
    void enableNotificationsWithEventIdxWritesAvailEvent() {
        SplitQueue q = driver.deviceQueue(EVENT_IDX, calls);
        DescriptorChain c = q.newChain();
        driver.addChain(new byte[][] {bytes("a")}, new int[0]);
        driver.addChain(new byte[][] {bytes("b")}, new int[0]);
        q.disableNotifications();
        assertEquals(0, driver.usedFlags(), "EVENT_IDX does not use the flag");
        assertTrue(q.pop(c));
        assertTrue(q.enableNotifications(), "one still available");
        assertEquals(1, driver.availEvent());
        assertTrue(q.pop(c));
        assertFalse(q.enableNotifications());
        assertEquals(2, driver.availEvent());
    }

    @Test
    void updateMemoryKeepsTheQueueRunningOverAnEquivalentSnapshot() {
        FakeGuestMemory old = (FakeGuestMemory) driver.memory();
        SplitQueue q = driver.deviceQueue(0, calls);
        FakeGuestMemory same = FakeGuestMemory.builder()
                .region(old.region(0).guestAddress(), old.region(0).backing())
                .region(0x4000_0000L, 4096)
                .build();
        q.updateMemory(same);
        assertEquals(same, q.memory());
        driver.addChain(new byte[][] {bytes("a")}, new int[0]);
        DescriptorChain c = q.newChain();
        assertTrue(q.pop(c));
        assertFalse(q.isBroken());
    }

    @Test
    void updateMemoryWithoutTheRingsBreaksTheQueue() {
        SplitQueue q = driver.deviceQueue(0, calls);
        CountingNotifier errors = new CountingNotifier();
        q.setErrorNotifier(errors);
        q.updateMemory(FakeGuestMemory.of(0x4000_0000L, 4096));
        assertTrue(q.isBroken());
        assertTrue(q.brokenReason().contains("0x10000"), q.brokenReason());
        assertFalse(q.pop(q.newChain()));
        assertEquals(1, errors.count());
    }

    @Test
    void constructorRejectsBadGeometryNamingTheField() {
        var m = driver.memory();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new SplitQueue(3, 6, driver.descGpa(), driver.availGpa(), driver.usedGpa(), 0, m, 0, calls));
        assertTrue(e.getMessage().contains("queue 3") && e.getMessage().contains("6"), e.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> new SplitQueue(0, 65536, driver.descGpa(), driver.availGpa(), driver.usedGpa(), 0, m, 0, calls));
        e = assertThrows(IllegalArgumentException.class,
                () -> new SplitQueue(0, 8, driver.descGpa() + 8, driver.availGpa(), driver.usedGpa(), 0, m, 0, calls));
        assertTrue(e.getMessage().contains("descriptor table"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> new SplitQueue(0, 8, driver.descGpa(), driver.availGpa() + 1, driver.usedGpa(), 0, m, 0, calls));
        assertTrue(e.getMessage().contains("avail ring"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> new SplitQueue(0, 8, driver.descGpa(), driver.availGpa(), driver.usedGpa() + 2, 0, m, 0, calls));
        assertTrue(e.getMessage().contains("used ring"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> new SplitQueue(0, 8, driver.descGpa(), driver.availGpa(), 0x9000_0000L, 0, m, 0, calls));
        assertTrue(e.getMessage().contains("0x90000000"), e.getMessage());
    }

    @Test
    void chainsMayUseBuffersInAnotherRegion() {
        FakeGuestMemory two = FakeGuestMemory.builder().region(0x10000, 0x10000).region(0x100000, 0x1000).build();
        MockSplitQueue d = new MockSplitQueue(two, 4, 0x10000, 0x11000, 0x12000, 0x100000, 0x1000);
        SplitQueue q = d.deviceQueue(0, calls);
        d.addChain(new byte[][] {bytes("far")}, new int[0]);
        DescriptorChain c = q.newChain();
        assertTrue(q.pop(c));
        byte[] r = new byte[3];
        c.read(0, r, 0, 3);
        assertArrayEquals(bytes("far"), r);
        ByteBuffer window = c.segmentBuffer(0);
        assertEquals('f', window.get(c.segmentOffset(0)));
    }

    @Test
    void pollUsedReturnsNullWhenNothingWasPublished() {
        driver.deviceQueue(0, calls);
        assertNull(driver.pollUsed());
    }

    /** A DescriptorChain of another implementation: a single writable byte array. */
    private static final class RecordingChain implements DescriptorChain {
        final byte[] data;

        RecordingChain(int writable) {
            data = new byte[writable];
        }

        @Override public int head() { return 0; }
        @Override public int readableBytes() { return 0; }
        @Override public int writableBytes() { return data.length; }
        @Override public int segmentCount() { return 0; }
        @Override public int readableSegments() { return 0; }
        @Override public ByteBuffer segmentBuffer(int i) { throw new IndexOutOfBoundsException(); }
        @Override public int segmentOffset(int i) { throw new IndexOutOfBoundsException(); }
        @Override public int segmentLength(int i) { throw new IndexOutOfBoundsException(); }
        @Override public long segmentAddress(int i) { throw new IndexOutOfBoundsException(); }
        @Override public int read(int offset, byte[] dst, int dstOffset, int len) { return 0; }
        @Override public int copyTo(int s, DescriptorChain d, int o, int len) { return 0; }

        @Override
        public int write(int offset, byte[] src, int srcOffset, int len) {
            int n = Math.max(0, Math.min(len, data.length - offset));
            System.arraycopy(src, srcOffset, data, offset, n);
            return n;
        }
    }
}
