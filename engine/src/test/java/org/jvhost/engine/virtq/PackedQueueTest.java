package org.jvhost.engine.virtq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicInteger;
import org.jvhost.spi.Completion;
import java.util.concurrent.TimeUnit;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.testkit.CountingNotifier;
import org.jvhost.testkit.FakeGuestMemory;
import org.jvhost.testkit.GuestAccess;
import org.jvhost.testkit.MockPackedQueue;
import org.jvhost.testkit.MockSplitQueue;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The packed ring over fake guest memory driven by {@link MockPackedQueue}: buffers across many wraps,
 * chains, indirect tables, event suppression both ways, the vring base, unpop, and every hostile
 * driver pattern breaking only the queue, with a reason, and leaving guest memory untouched.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class PackedQueueTest {
    private static final long FEATURES = VirtioFeatures.RING_INDIRECT_DESC | VirtioFeatures.RING_EVENT_IDX;
    private static final int SIZE = 8;

    private final MockPackedQueue driver = MockPackedQueue.create(SIZE);
    private final CountingNotifier calls = new CountingNotifier();

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    /** Echoes the readable bytes into the writable part, returns the chain. */
    private static int echo(DescriptorChain c) {
        byte[] in = new byte[c.readableBytes()];
        c.read(0, in, 0, in.length);
        return c.write(0, in, 0, in.length);
    }

    @Test
    void chainsOfMixedLengthsRoundTripAcrossManyWraps() {
        PackedQueue q = driver.deviceQueue(FEATURES, calls);
        DescriptorChain c = q.newChain();
        for (int round = 0; round < 50; round++) {
            String msg = "round " + round;
            int id = (round % 3 == 0)
                    ? driver.addIndirectChain(new byte[][] {bytes(msg)}, new int[] {16})
                    : driver.addChain(new byte[][] {bytes(msg.substring(0, 3)), bytes(msg.substring(3))},
                            new int[] {4, 12});
            assertTrue(q.pop(c), "round " + round);
            assertEquals(id, c.head());
            q.addUsed(c, echo(c));
            assertNull(driver.pollUsed(), "visible only after publishUsed");
            q.publishUsed();
            MockSplitQueue.UsedElement e = driver.pollUsed();
            assertNotNull(e);
            assertEquals(id, e.id());
            assertEquals(msg, new String(driver.writtenBytes(e), StandardCharsets.US_ASCII));
            assertFalse(q.pop(c));
        }
        assertFalse(q.isBroken());
    }

    /**
     * {@link org.jvhost.spi.Virtqueue#defer} on a packed ring: chains completed on another thread become
     * used descriptors at the next drain, in arrival order, each skipping the ring entries its buffer
     * took; an id still deferred cannot be reused by the driver, and after closeDeferred a late
     * completion writes nothing.
     */
    @Test
    void deferredChainsCompleteFromAnotherThreadAndPublishOnDrain() throws Exception {
        PackedQueue q = driver.deviceQueue(FEATURES, calls);
        AtomicInteger wakes = new AtomicInteger();
        q.setCompletionWake(wakes::incrementAndGet);
        int a = driver.addChain(new byte[][] {bytes("a"), bytes("aa")}, new int[] {4}); // 3 ring entries
        int b = driver.addChain(new byte[][] {bytes("b")}, new int[] {4});
        DescriptorChain c = q.newChain();
        assertTrue(q.pop(c));
        Completion first = q.defer(c);
        c.write(0, bytes("AAAA"), 0, 4); // the device writes before completing
        assertTrue(q.pop(c), "the chain object is free for the next pop");
        Completion second = q.defer(c);
        assertThrows(IllegalArgumentException.class, () -> q.unpop(1), "a deferred chain cannot be unpopped");
        assertEquals(2, q.deferredCount());
        Thread t = new Thread(() -> {
            second.complete(1);
            first.complete(4);
        });
        t.start();
        t.join();
        assertEquals(1, wakes.get(), "one wake per batch");
        assertNull(driver.pollUsed(), "nothing is published before the worker drains");
        assertEquals(2, q.drainCompletions());
        assertEquals(0, q.deferredCount());
        assertEquals(new MockSplitQueue.UsedElement(b, 1), driver.pollUsed(), "arrival order, not pop order");
        MockSplitQueue.UsedElement e = driver.pollUsed();
        assertEquals(new MockSplitQueue.UsedElement(a, 4), e);
        assertEquals("AAAA", new String(driver.writtenBytes(e), StandardCharsets.US_ASCII));
        assertEquals(5, q.nextUsed(), "used position moved past both buffers' ring entries (3 + 2)");
        assertEquals(1, calls.count(), "one signal for the batch");

        driver.addChain(new byte[][] {bytes("c")}, new int[] {4});
        assertTrue(q.pop(c));
        Completion late = q.defer(c);
        assertEquals(1, q.closeDeferred(), "the ring stopped with one chain outstanding");
        late.complete(4);
        assertEquals(0, q.drainCompletions());
        assertNull(driver.pollUsed(), "a completion after the stop writes nothing");
        assertFalse(q.isBroken());
    }

    @Test
    void aBatchBecomesVisibleAtOnceAndIdsMayReturnOutOfOrder() {
        PackedQueue q = driver.deviceQueue(FEATURES, calls);
        DescriptorChain a = q.newChain();
        DescriptorChain b = q.newChain();
        int ida = driver.addChain(new byte[][] {bytes("a")}, new int[] {1});
        int idb = driver.addChain(new byte[][] {bytes("bb"), bytes("b")}, new int[] {3});
        assertEquals(2, q.availableCount());
        assertTrue(q.pop(a));
        assertTrue(q.pop(b));
        q.addUsed(b, echo(b));
        q.addUsed(a, echo(a));
        assertNull(driver.pollUsed());
        q.publishUsed();
        assertEquals(idb, driver.pollUsed().id());
        assertEquals(ida, driver.pollUsed().id());
        assertNull(driver.pollUsed());
        assertEquals(q.nextAvail(), q.nextUsed());
    }

    /**
     * Used descriptors are held back until publishUsed, at most {@link PackedUsedRing#MAX_SHADOW} of them:
     * a longer batch becomes visible in parts, in ring order, with every id and length right, and the
     * ring ends where the driver stands.
     */
    @Test
    void aBatchLongerThanTheShadowIsPublishedInParts() {
        int size = 4 * PackedUsedRing.MAX_SHADOW; // two ring entries per buffer
        MockPackedQueue big = MockPackedQueue.create(size);
        PackedQueue q = big.deviceQueue(FEATURES, calls);
        int n = PackedUsedRing.MAX_SHADOW + 44;
        int[] ids = new int[n];
        DescriptorChain c = q.newChain();
        for (int i = 0; i < n; i++) {
            ids[i] = big.addChain(new byte[][] {bytes("f" + i)}, new int[] {8});
            assertTrue(q.pop(c));
            q.addUsed(c, echo(c));
            if (i == PackedUsedRing.MAX_SHADOW - 2) {
                assertNull(big.pollUsed(), "held back until the shadow is full");
            }
        }
        for (int i = 0; i < PackedUsedRing.MAX_SHADOW; i++) {
            MockSplitQueue.UsedElement e = big.pollUsed();
            assertNotNull(e, "entry " + i + " of the full shadow");
            assertEquals(ids[i], e.id());
            assertEquals("f" + i, new String(big.writtenBytes(e), StandardCharsets.US_ASCII));
        }
        assertNull(big.pollUsed(), "the rest waits for publishUsed");
        q.publishUsed();
        for (int i = PackedUsedRing.MAX_SHADOW; i < n; i++) {
            assertEquals(ids[i], big.pollUsed().id());
        }
        assertNull(big.pollUsed());
        assertEquals(q.nextAvail(), q.nextUsed());
        assertFalse(q.isBroken());
    }

    /**
     * IN_ORDER: a run of buffers the device wrote nothing into is one used descriptor at the run's first
     * position carrying the run's last id (the driver skips the rest); a buffer with bytes written keeps
     * its own. Without IN_ORDER every buffer has its used descriptor.
     */
    @Test
    void inOrderPublishesARunOfUnwrittenBuffersAsOneUsedDescriptor() {
        int[] written = {0, 0, 0, 4, 0};
        int[] ids = usedIdsAfterOneBatch(VirtioFeatures.IN_ORDER, written);
        assertEquals(ids[2], usedId(0), "the run 0-2 is one descriptor at position 0 with the last id");
        assertFalse(isUsed(1), "position 1 is not written");
        assertFalse(isUsed(2), "position 2 is not written");
        assertEquals(ids[3], usedId(3), "a buffer with bytes written keeps its descriptor");
        assertEquals(ids[4], usedId(4), "a run of one");

        MockPackedQueue plain = MockPackedQueue.create(SIZE);
        int[] plainIds = usedIdsAfterOneBatch(plain, 0, written);
        for (int i = 0; i < written.length; i++) {
            assertEquals(plainIds[i], plain.pollUsed().id(), "without IN_ORDER, buffer " + i + " has its own");
        }
    }

    private int[] usedIdsAfterOneBatch(long features, int[] written) {
        return usedIdsAfterOneBatch(driver, features, written);
    }

    /** One buffer per entry of {@code written} (4 writable bytes each), popped, used with that many bytes, published. */
    private int[] usedIdsAfterOneBatch(MockPackedQueue d, long features, int[] written) {
        PackedQueue q = d.deviceQueue(FEATURES | features, calls);
        DescriptorChain c = q.newChain();
        int[] ids = new int[written.length];
        for (int i = 0; i < written.length; i++) {
            ids[i] = d.addChain(new byte[0][], new int[] {4});
        }
        for (int i = 0; i < written.length; i++) {
            assertTrue(q.pop(c));
            q.addUsed(c, written[i]);
        }
        q.publishUsed();
        assertEquals(written.length, q.nextUsed(), "the used position counts every buffer");
        assertFalse(q.isBroken());
        return ids;
    }

    private int usedId(int pos) {
        assertTrue(isUsed(pos), "position " + pos + " is used");
        byte[] d = GuestAccess.read(driver.memory(), driver.descGpa() + pos * PackedDescriptorLayout.SIZE, 16);
        return Short.toUnsignedInt(java.nio.ByteBuffer.wrap(d).order(java.nio.ByteOrder.LITTLE_ENDIAN)
                .getShort(PackedDescriptorLayout.ID));
    }

    /** Whether ring entry {@code pos} holds a used descriptor of the first lap (AVAIL and USED both set). */
    private boolean isUsed(int pos) {
        byte[] d = GuestAccess.read(driver.memory(), driver.descGpa() + pos * PackedDescriptorLayout.SIZE, 16);
        int flags = Short.toUnsignedInt(java.nio.ByteBuffer.wrap(d).order(java.nio.ByteOrder.LITTLE_ENDIAN)
                .getShort(PackedDescriptorLayout.FLAGS));
        return flags == PackedDescriptorLayout.usedFlags(true)
                || flags == (PackedDescriptorLayout.usedFlags(true) | PackedDescriptorLayout.F_WRITE);
    }

    @Test
    void unpopGivesBuffersBackInOrder() {
        PackedQueue q = driver.deviceQueue(FEATURES, calls);
        DescriptorChain c = q.newChain();
        int first = driver.addChain(new byte[][] {bytes("x"), bytes("y")}, new int[] {2});
        driver.addChain(new byte[][] {bytes("z")}, new int[] {1});
        assertTrue(q.pop(c));
        assertTrue(q.pop(c));
        q.unpop(2);
        assertEquals(0, q.nextAvail());
        assertTrue(q.pop(c));
        assertEquals(first, c.head(), "the same id may be popped again after unpop");
    }

    /** Unpop walks back over the chains' ring entries, across the ring's end: the avail wrap counter flips back. */
    @Test
    void unpopAcrossTheWrapRestoresTheWrapCounter() {
        PackedQueue q = driver.deviceQueue(FEATURES, calls);
        DescriptorChain c = q.newChain();
        for (int i = 0; i < SIZE - 2; i++) {
            driver.addChain(new byte[][] {bytes("a")}, new int[0]);
            assertTrue(q.pop(c));
            q.addUsed(c, 0);
        }
        q.publishUsed();
        for (int i = 0; i < SIZE - 2; i++) {
            assertNotNull(driver.pollUsed());
        }
        int sixth = driver.addChain(new byte[][] {bytes("b")}, new int[0]);       // position 6
        driver.addChain(new byte[][] {bytes("c"), bytes("d")}, new int[0]);       // positions 7 and 0
        driver.addChain(new byte[][] {bytes("e")}, new int[0]);                   // position 1, next lap
        assertTrue(q.pop(c));
        assertTrue(q.pop(c));
        assertTrue(q.pop(c));
        assertEquals(2, q.vringBase() & 0xffff, "avail at 2 on the next lap: wrap counter 0");
        q.unpop(2);
        assertEquals(SIZE - 1, q.nextAvail(), "back at position 7");
        assertEquals(0x8000 | (SIZE - 1), q.vringBase() & 0xffff, "position 7 with the first lap's wrap counter");
        q.unpop(1);
        assertTrue(q.pop(c));
        assertEquals(sixth, c.head(), "the same buffer again after unpop");
        assertTrue(q.pop(c));
        assertTrue(q.pop(c));
        assertFalse(q.pop(c));
        assertFalse(q.isBroken());
    }

    @Test
    void driverEventSuppressionDecidesCalls() {
        PackedQueue q = driver.deviceQueue(FEATURES, calls);
        DescriptorChain c = q.newChain();
        driver.setDriverEvent(0, EventSuppressLayout.DISABLE);
        serveOne(q, c);
        assertEquals(0, calls.count());
        driver.setDriverEvent(0, EventSuppressLayout.ENABLE);
        serveOne(q, c);
        assertEquals(1, calls.count());
        // DESC: a call only once the used position passes off_wrap (two buffers ahead)
        driver.pollUsed();
        driver.pollUsed();
        driver.setDriverEvent(driver.usedOffWrap() + 1, EventSuppressLayout.DESC); // the entry after the next
        serveOne(q, c);
        assertEquals(1, calls.count(), "event position not yet written");
        serveOne(q, c);
        assertEquals(2, calls.count(), "event position written");
    }

    /** As SplitQueueTest's: the driver's DESC request came after signalUsed read DISABLE. */
    @Test
    void anInterruptSkippedBeforeTheDriverAskedIsSentByTheSecondLook() {
        PackedQueue q = driver.deviceQueue(FEATURES, calls);
        DescriptorChain c = q.newChain();
        assertFalse(q.signalIfMissed(), "nothing was skipped");
        driver.setDriverEvent(0, EventSuppressLayout.DISABLE);
        serveOne(q, c);
        assertEquals(0, calls.count());
        assertFalse(q.signalIfMissed(), "interrupts still off");
        int next = driver.usedOffWrap(); // the one entry used, not yet seen by the driver
        driver.setDriverEvent(next, EventSuppressLayout.DESC);
        assertTrue(q.signalIfMissed(), "owed: the driver waits for an entry already written");
        assertFalse(q.signalIfMissed(), "sent once");
        driver.pollUsed();
        driver.setDriverEvent(driver.usedOffWrap(), EventSuppressLayout.DESC);
        driver.setDriverEvent(0, EventSuppressLayout.DISABLE);
        serveOne(q, c);
        driver.pollUsed();
        driver.setDriverEvent(driver.usedOffWrap(), EventSuppressLayout.DESC); // saw it, asks about the next
        assertFalse(q.signalIfMissed(), "nothing written that the driver still waits for");
        driver.setDriverEvent(0, EventSuppressLayout.ENABLE);
        assertTrue(q.signalIfMissed(), "ENABLE after a skip: sent");
        assertEquals(2, calls.count());
    }

    @Test
    void descEventNamesThePreviousLapAcrossTheWrap() {
        PackedQueue q = driver.deviceQueue(FEATURES, calls);
        DescriptorChain c = q.newChain();
        driver.setDriverEvent(0, EventSuppressLayout.DISABLE);
        for (int i = 0; i < SIZE - 1; i++) {
            serveOne(q, c);
            driver.pollUsed();
        }
        // the driver wants a call when position SIZE-1 (wrap 1) is used; the device crosses the wrap there
        driver.setDriverEvent((SIZE - 1) | EventSuppressLayout.WRAP, EventSuppressLayout.DESC);
        driver.addChain(new byte[][] {bytes("p")}, new int[] {1});
        driver.addChain(new byte[][] {bytes("q")}, new int[] {1});
        assertTrue(q.pop(c));
        q.addUsed(c, echo(c));
        assertTrue(q.pop(c));
        q.addUsed(c, echo(c));
        assertTrue(q.signalUsed());
    }

    /** One single-descriptor buffer through the ring (one ring entry). */
    private int serveOne(PackedQueue q, DescriptorChain c) {
        int id = driver.addChain(new byte[0][], new int[] {1});
        assertTrue(q.pop(c));
        q.addUsed(c, c.write(0, new byte[] {'m'}, 0, 1));
        q.signalUsed();
        return id;
    }

    @Test
    void deviceEventSuppressionAsksForKicksAtTheAvailPosition() {
        PackedQueue q = driver.deviceQueue(FEATURES, calls);
        DescriptorChain c = q.newChain();
        q.disableNotifications();
        assertEquals(EventSuppressLayout.DISABLE, driver.deviceEventFlags());
        serveOne(q, c);
        assertFalse(q.enableNotifications());
        assertEquals(EventSuppressLayout.DESC, driver.deviceEventFlags());
        assertEquals(driver.availOffWrap(), driver.deviceEventOffWrap());
        driver.addChain(new byte[][] {bytes("n")}, new int[] {1});
        assertTrue(q.enableNotifications(), "a buffer published meanwhile is reported");
        q.setHostPolling(true);
        assertEquals(EventSuppressLayout.DISABLE, driver.deviceEventFlags());

        PackedQueue plain = MockPackedQueue.create(SIZE).deviceQueue(0, calls);
        plain.enableNotifications();
        assertTrue(plain.deviceWantsKicks());
    }

    @Test
    void availIndexMovesWithNewBuffersAndMeetsNextAvailWhenDrained() {
        PackedQueue q = driver.deviceQueue(FEATURES, calls);
        DescriptorChain c = q.newChain();
        assertEquals(q.nextAvail(), q.availIndex());
        driver.addChain(new byte[][] {bytes("a"), bytes("b")}, new int[] {1});
        driver.addChain(new byte[][] {bytes("c")}, new int[] {1});
        assertEquals(q.nextAvail() + 5, q.availIndex());
        while (q.pop(c)) {
            q.addUsed(c, 0);
        }
        assertEquals(q.nextAvail(), q.availIndex());
        assertEquals(5, q.nextAvail());
    }

    /** Serves {@code n} one-entry buffers on {@code q} and lets the driver see them used. */
    private void serveOneEntryBuffers(PackedQueue q, int n) {
        DescriptorChain c = q.newChain();
        for (int i = 0; i < n; i++) {
            driver.addChain(new byte[][] {bytes("x")}, new int[] {});
            assertTrue(q.pop(c));
            q.addUsed(c, 0);
            q.publishUsed();
            assertNotNull(driver.pollUsed());
        }
    }

    /**
     * QEMU restarts a packed ring whose back-end vanished at a stale base (its last GET_VRING_BASE, or
     * 0x80008000): the queue finds its position from the descriptor flags, with buffers waiting (an RX
     * ring) and without (an idle TX ring), across a wrap.
     */
    @Test
    void aStaleBaseResumesWhereTheFlagsSayTheDeviceStands() {
        PackedQueue q = driver.deviceQueue(FEATURES, calls);
        serveOneEntryBuffers(q, SIZE + 3); // one wrap, then position 3 with wrap counter 0
        int stale = 0x8000 | 0x8000 << 16;
        PackedQueue idle = driver.deviceQueue(0, FEATURES, stale, calls);
        assertEquals(3 | 3 << 16, idle.vringBase(), "nothing available: position and counter of the last used entry");
        int a = driver.addChain(new byte[][] {bytes("a")}, new int[] {});
        int b = driver.addChain(new byte[][] {bytes("b")}, new int[] {});
        PackedQueue busy = driver.deviceQueue(0, FEATURES, stale, calls);
        assertEquals(3 | 3 << 16, busy.vringBase(), "buffers waiting: the first of them");
        DescriptorChain c = busy.newChain();
        assertTrue(busy.pop(c));
        assertEquals(a, c.head());
        assertTrue(busy.pop(c));
        assertEquals(b, c.head());
        assertFalse(busy.isBroken());
    }

    /**
     * The flags are the guest's to write: whatever they hold, the scan of a stale base reads only the
     * ring, and the queue starts at a position inside it or where the front-end said.
     */
    @Test
    void arbitraryFlagsNeverTakeTheScanOutsideTheRing() {
        java.util.Random random = new java.util.Random(15);
        for (int round = 0; round < 2000; round++) {
            for (int pos = 0; pos < SIZE; pos++) {
                int flags = (random.nextBoolean() ? PackedDescriptorLayout.F_AVAIL : 0)
                        | (random.nextBoolean() ? PackedDescriptorLayout.F_USED : 0);
                driver.writeDescriptor(pos, 0, 0, random.nextInt(1 << 16), flags);
            }
            int base = random.nextInt(SIZE) | (random.nextBoolean() ? 0x8000 : 0);
            PackedQueue q = driver.deviceQueue(0, FEATURES, base | base << 16, calls);
            int avail = q.vringBase() & 0x7fff;
            assertTrue(avail < SIZE, "round " + round);
            assertEquals(q.vringBase() & 0xffff, q.vringBase() >>> 16, "round " + round);
        }
    }

    /** Chained buffers leave flags that name no single position: the front-end's base stands. */
    @Test
    void flagsThatNameNoPositionLeaveTheBaseAlone() {
        PackedQueue q = driver.deviceQueue(FEATURES, calls);
        DescriptorChain c = q.newChain();
        for (int i = 0; i < 3; i++) {
            driver.addChain(new byte[][] {bytes("x"), bytes("y")}, new int[] {}); // 2 entries, 1 used written
            assertTrue(q.pop(c));
            q.addUsed(c, 0);
            q.publishUsed();
            assertNotNull(driver.pollUsed());
        }
        PackedQueue again = driver.deviceQueue(0, FEATURES, 0x8000 | 0x8000 << 16, calls);
        assertEquals(0x8000 | 0x8000 << 16, again.vringBase());
    }

    @Test
    void vringBaseCarriesBothWrapCountersAndRestarts() {
        PackedQueue q = driver.deviceQueue(FEATURES, calls);
        DescriptorChain c = q.newChain();
        for (int i = 0; i < SIZE + 3; i++) {
            serveOne(q, c);
            driver.pollUsed();
        }
        // 11 descriptors: position 3, wrap counters flipped to 0
        assertEquals(3 | 3 << 16, q.vringBase());
        assertEquals(driver.vringBase(), q.vringBase());
        PackedQueue again = driver.deviceQueue(0, FEATURES, q.vringBase(), calls);
        int id = serveOne(again, c);
        MockSplitQueue.UsedElement e = driver.pollUsed();
        assertEquals(id, e.id());
        assertEquals("m", new String(driver.writtenBytes(e), StandardCharsets.US_ASCII));
        // only the avail half (DPDK's virtio_user): used follows avail
        PackedQueue dpdk = driver.deviceQueue(0, FEATURES, driver.vringBase() & 0xffff, calls);
        assertEquals(driver.vringBase(), dpdk.vringBase());
    }

    // ---------------------------------------------------------------- hostile drivers

    private void assertBreaks(long features, String expected) {
        FakeGuestMemory memory = (FakeGuestMemory) driver.memory();
        CountingNotifier errors = new CountingNotifier();
        PackedQueue q = driver.deviceQueue(features, calls);
        q.setErrorNotifier(errors);
        byte[] before = memory.read(0x10000, (int) MockPackedQueue.ringArea(SIZE) + 4096);
        DescriptorChain c = q.newChain();
        while (q.pop(c)) {
            q.addUsed(c, 0);
        }
        q.publishUsed();
        assertTrue(q.isBroken(), "queue should break");
        assertTrue(q.brokenReason().contains(expected), q.brokenReason());
        assertEquals(1, errors.count());
        assertFalse(q.pop(c));
        q.signalUsed();
        q.enableNotifications();
        assertEquals(0, q.availableCount());
        assertArrayEquals(before, memory.read(0x10000, (int) MockPackedQueue.ringArea(SIZE) + 4096),
                "a broken queue writes nothing");
    }

    private long buf() {
        return driver.allocate(64);
    }

    @Test
    void idOutOfRangeBreaks() {
        driver.writeDescriptor(0, buf(), 8, SIZE, MockPackedQueue.availBits(true));
        assertBreaks(FEATURES, "id 8 >= ring size 8");
    }

    @Test
    void idReusedWhileOutstandingBreaks() {
        driver.writeDescriptor(1, buf(), 8, 3, MockPackedQueue.availBits(true));
        driver.writeDescriptor(0, buf(), 8, 3, MockPackedQueue.availBits(true));
        FakeGuestMemory memory = (FakeGuestMemory) driver.memory();
        PackedQueue q = driver.deviceQueue(FEATURES, calls);
        DescriptorChain c = q.newChain();
        assertTrue(q.pop(c));
        assertFalse(q.pop(c));
        assertTrue(q.brokenReason().contains("reuses id 3"), q.brokenReason());
        assertNotNull(memory);
    }

    @Test
    void bufferOutsideMemoryBreaks() {
        driver.writeDescriptor(0, 0x7000_0000L, 8, 0, MockPackedQueue.availBits(true));
        assertBreaks(FEATURES, "is not inside one guest memory region");
    }

    @Test
    void chainLongerThanTheRingBreaks() {
        for (int i = SIZE - 1; i >= 0; i--) {
            driver.writeDescriptor(i, buf(), 8, 0, PackedDescriptorLayout.F_NEXT | MockPackedQueue.availBits(true));
        }
        // the entries past the wrap look available for the next lap too: a chain that never ends
        assertBreaks(FEATURES, "is longer than the ring size 8");
    }

    @Test
    void chainEntryThatLiesAboutTheWrapCounterBreaks() {
        // entry 1 continues the chain but carries the flags of the lap before (AVAIL = USED = 0)
        driver.writeDescriptor(1, buf(), 8, 0, 0);
        driver.writeDescriptor(0, buf(), 8, 0, PackedDescriptorLayout.F_NEXT | MockPackedQueue.availBits(true));
        assertBreaks(FEATURES, "do not mark it available for wrap counter 1");
    }

    @Test
    void nestedIndirectTableBreaks() {
        long table = driver.allocate(32);
        long inner = driver.allocate(16);
        driver.writeDescriptorAt(inner, buf(), 8, 0, 0);
        driver.writeDescriptorAt(table, inner, 16, 0, PackedDescriptorLayout.F_INDIRECT);
        driver.writeDescriptorAt(table + 16, buf(), 8, 0, 0);
        driver.writeDescriptor(0, table, 32, 0, PackedDescriptorLayout.F_INDIRECT | MockPackedQueue.availBits(true));
        assertBreaks(FEATURES, "nested indirect table");
    }

    @Test
    void indirectWithoutTheFeatureOrWithNextBreaks() {
        long table = driver.allocate(16);
        driver.writeDescriptorAt(table, buf(), 8, 0, 0);
        driver.writeDescriptor(0, table, 16, 0, PackedDescriptorLayout.F_INDIRECT | MockPackedQueue.availBits(true));
        assertBreaks(VirtioFeatures.RING_EVENT_IDX, "VIRTIO_F_RING_INDIRECT_DESC was not negotiated");
    }

    @Test
    void readableAfterWritableBreaks() {
        driver.writeDescriptor(1, buf(), 8, 0, MockPackedQueue.availBits(true));
        driver.writeDescriptor(0, buf(), 8, 0, PackedDescriptorLayout.F_NEXT | PackedDescriptorLayout.F_WRITE
                | MockPackedQueue.availBits(true));
        assertBreaks(FEATURES, "device-readable descriptor after a device-writable one");
    }

    @Test
    void baseOutsideTheRingIsRefused() {
        try {
            driver.deviceQueue(0, FEATURES, 0x8000 | SIZE, calls);
            throw new AssertionError("accepted");
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage().contains("past the ring"), e.getMessage());
        }
    }

    @Test
    void dirtyLogMarksTheUsedDescriptorAndTheWrittenBuffer() throws Exception {
        long ram = 0x10000 + MockPackedQueue.ringArea(SIZE) + (4L << 20);
        long logBytes = (ram / 4096 + 7) / 8;
        int fd = org.jvhost.engine.sys.LinuxSys.memfdCreate("jvhost-test-packed-log",
                org.jvhost.engine.sys.LinuxSys.MFD_CLOEXEC | org.jvhost.engine.sys.LinuxSys.MFD_ALLOW_SEALING);
        org.jvhost.engine.sys.LinuxSys.truncate(fd, logBytes);
        org.jvhost.engine.memory.DirtyLog dirty = org.jvhost.engine.memory.DirtyLog.map(fd, logBytes, 0);
        org.jvhost.engine.sys.LinuxSys.closeQuietly(fd);
        try {
            PackedQueue q = driver.deviceQueue(FEATURES, calls);
            q.setLog(new RingLog(dirty, 0));
            DescriptorChain c = q.newChain();
            int id = driver.addChain(new byte[][] {bytes("abc")}, new int[] {8});
            assertTrue(q.pop(c));
            q.addUsed(c, echo(c));
            q.publishUsed();
            assertFalse(dirty.isDirty(driver.deviceGpa() >>> 12), "device area not written yet");
            assertTrue(dirty.isDirty(driver.descGpa() >>> 12), "descriptor ring page");
            assertTrue(dirty.isDirty(((SplitDescriptorChain) c).guestAddress(1) >>> 12), "written buffer page");
            assertEquals(id, driver.pollUsed().id());
            q.disableNotifications(); // the device area's first write
            q.publishUsed(); // flushes the log
            assertTrue(dirty.isDirty(driver.deviceGpa() >>> 12), "device area page, once the device wrote it");
        } finally {
            dirty.unmap();
        }
    }
}
