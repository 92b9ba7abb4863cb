package org.jvhost.device.net;

import static org.jvhost.testkit.NetFrames.concat;
import static org.jvhost.testkit.NetFrames.numBuffers;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.jvhost.engine.virtq.SplitQueue;
import org.jvhost.engine.virtq.UsedRingLayout;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.spi.virtio.VirtioNet;
import org.jvhost.testkit.CountingNotifier;
import org.jvhost.testkit.FakeGuestMemory;
import org.jvhost.testkit.MockSplitQueue;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The net device driven as a guest would (driver-side mock rings, the engine's SplitQueue on the device
 * side, kicks by calling handleKick) over a socket-pair TAP whose other end the test holds, with
 * readiness fired by hand.
 */
@Timeout(value = 20, unit = TimeUnit.SECONDS)
class NetDeviceTest {
    private static final int RING = 64;
    private static final long AREA = 1 << 20;
    private static final int ALL_OFFLOADS = TunOffloads.TUN_F_CSUM | TunOffloads.TUN_F_TSO4
            | TunOffloads.TUN_F_TSO6 | TunOffloads.TUN_F_TSO_ECN | TunOffloads.TUN_F_UFO;

    private final FakeGuestMemory memory = FakeGuestMemory.of(0x10000, (int) (8 * AREA));
    private final RecordingContext context = new RecordingContext();
    private SocketPairTap tap;

    @AfterEach
    void closeTap() {
        if (tap != null) {
            tap.close();
        }
    }

    /** RX and TX of one pair: driver side and device side. */
    private final class Pair {
        final MockSplitQueue rxDriver;
        final MockSplitQueue txDriver;
        final CountingNotifier rxCalls = new CountingNotifier();
        final CountingNotifier txCalls = new CountingNotifier();
        final SplitQueue rx;
        final SplitQueue tx;

        Pair(int n, long features) {
            this(n, features, RING);
        }

        Pair(int n, long features, int ring) {
            rxDriver = MockSplitQueue.create(memory, ring, 0x10000 + (2L * n) * AREA, AREA);
            txDriver = MockSplitQueue.create(memory, ring, 0x10000 + (2L * n + 1) * AREA, AREA);
            rx = rxDriver.deviceQueue(2 * n, features, 0, rxCalls);
            tx = txDriver.deviceQueue(2 * n + 1, features, 0, txCalls);
        }
    }

    private NetDevice device(int pairs, int tapOffloads) {
        return device(pairs, tapOffloads, false);
    }

    /** {@code batched}: TX writes go through an io_uring per TAP queue, as on a real TAP. */
    private NetDevice device(int pairs, int tapOffloads, boolean batched) {
        tap = new SocketPairTap(pairs, tapOffloads, batched);
        NetConfig config = new NetConfig("fake-tap", null, null, 0, pairs, NetConfig.Uring.AUTO);
        return new NetDevice("net@test", config, tap, context);
    }

    /** Acks {@code acked}, starts every queue of {@code pairs}. */
    private Pair[] start(NetDevice device, long acked, int count) {
        device.ackFeatures(acked);
        Pair[] pairs = new Pair[count];
        for (int n = 0; n < count; n++) {
            pairs[n] = new Pair(n, acked);
            device.startQueue(2 * n, pairs[n].rx);
            device.startQueue(2 * n + 1, pairs[n].tx);
        }
        return pairs;
    }

    private static final long MODERN = VirtioFeatures.VERSION_1 | VirtioNet.F_MRG_RXBUF;

    /** A frame: broadcast dst, a src, EtherType 0x88b5 (local experimental), then a counting payload. */
    private static byte[] frame(int length, int seed) {
        byte[] f = new byte[length];
        Arrays.fill(f, 0, 6, (byte) 0xff);
        f[6] = 0x02;
        f[12] = (byte) 0x88;
        f[13] = (byte) 0xb5;
        for (int i = 14; i < length; i++) {
            f[i] = (byte) (i * 7 + seed);
        }
        return f;
    }

    /** A header with every field set (NEEDS_CSUM, GSO TCPv4, lengths), num_buffers as given. */
    private static byte[] header(int numBuffers) {
        return new byte[] {1, 1, 54, 0, (byte) 0xa8, 5, 34, 0, 16, 0, (byte) numBuffers, (byte) (numBuffers >>> 8)};
    }

    /** Fires the RX watch of pair {@code n}. */
    private boolean fire(int n) {
        return context.watchOn(tap.fd(n)).fire();
    }

    @Test
    void aTransmittedFrameReachesTheTapWithItsHeaderUnchanged() {
        NetDevice device = device(1, ALL_OFFLOADS);
        Pair p = start(device, MODERN, 1)[0];
        byte[] header = header(0);
        byte[] frame = frame(1000, 3);
        // header in its own descriptor, frame split in two: the TAP must get one contiguous frame
        p.txDriver.addChain(new byte[][] {header, Arrays.copyOf(frame, 100), Arrays.copyOfRange(frame, 100, 1000)},
                new int[0]);

        device.handleKick(1);

        assertArrayEquals(concat(header, frame), tap.receive(0));
        assertNull(tap.receive(0), "one frame, one write");
        MockSplitQueue.UsedElement used = p.txDriver.pollUsed();
        assertEquals(0, used.len(), "TX chains come back with nothing written");
        assertTrue(p.txCalls.count() >= 1);
        assertEquals(1L, device.counters().get("tx_frames"));
        assertEquals(1000L, device.counters().get("tx_bytes"));
    }

    @Test
    void aLongTxDrainPublishesUsedEntriesAsItGoesAndSignalsOnce() {
        NetDevice device = device(1, ALL_OFFLOADS);
        Pair p = start(device, MODERN, 1)[0];
        int frames = PairDataPath.TX_BATCH + 20; // one descriptor each: fits the ring of 64
        for (int i = 0; i < frames; i++) {
            p.txDriver.addChain(new byte[][] {concat(header(0), frame(60, i))}, new int[0]);
        }
        List<Integer> usedSeen = new java.util.ArrayList<>();
        tap.beforeWrite = () -> usedSeen.add(p.txDriver.usedIdx());
        long callsBefore = p.txCalls.count();

        device.handleKick(1);

        assertEquals(frames, usedSeen.size());
        assertEquals(0, usedSeen.get(PairDataPath.TX_BATCH - 1), "nothing published inside the first batch");
        assertEquals(PairDataPath.TX_BATCH, usedSeen.get(PairDataPath.TX_BATCH),
                "the driver sees the first batch back while the drain goes on");
        assertEquals(PairDataPath.TX_BATCH, usedSeen.get(frames - 1), "the rest at the end");
        assertEquals(frames, p.txDriver.usedIdx(), "all published at the end");
        assertEquals(callsBefore + 1, p.txCalls.count(), "one call for the whole drain");
    }

    @Test
    void aTxDrainStopsAfterItsBudgetWithKicksOffAndTheNextCallFinishes() {
        NetDevice device = device(1, ALL_OFFLOADS);
        device.ackFeatures(MODERN);
        Pair p = new Pair(0, MODERN, 2 * PairDataPath.TX_BUDGET);
        device.startQueue(0, p.rx);
        device.startQueue(1, p.tx);
        int frames = PairDataPath.TX_BUDGET + 40;
        for (int i = 0; i < frames; i++) {
            p.txDriver.addChain(new byte[][] {concat(header(0), frame(60, i))}, new int[0]);
        }

        device.handleKick(1);

        assertEquals(PairDataPath.TX_BUDGET, p.txDriver.usedIdx(), "one call serves one budget, published");
        assertEquals(UsedRingLayout.F_NO_NOTIFY, p.txDriver.usedFlags(),
                "kicks stay off: the host calls again for the frames left (the Virtqueue fairness contract)");
        device.handleKick(1); // the host's re-delivery
        assertEquals(frames, p.txDriver.usedIdx());
        assertEquals(0, p.txDriver.usedFlags(), "drained: TX asks for kicks again");
        // the socketpair standing in for the TAP fills up (nobody reads it): those frames count as drops
        assertEquals((long) frames, device.counters().get("tx_frames") + device.counters().get("tx_dropped"));
    }

    @Test
    void aTxChainShorterThanHeaderPlusEthernetHeaderIsReturnedUnsent() {
        NetDevice device = device(1, ALL_OFFLOADS);
        Pair p = start(device, MODERN, 1)[0];
        p.txDriver.addChain(new byte[][] {header(0), new byte[13]}, new int[0]);
        p.txDriver.addChain(new byte[][] {header(0), frame(60, 1)}, new int[0]);

        device.handleKick(1);

        assertArrayEquals(concat(header(0), frame(60, 1)), tap.receive(0), "the good frame after it still goes");
        assertNull(tap.receive(0));
        assertNotNull(p.txDriver.pollUsed());
        assertNotNull(p.txDriver.pollUsed());
        assertEquals(1L, device.counters().get("tx_malformed"));
        assertEquals(1L, device.counters().get("tx_frames"));
    }

    @Test
    void throughIoUringEveryFrameOfSeveralBatchesArrivesInOrderAndEachOutcomeIsCounted() {
        NetDevice device = device(1, ALL_OFFLOADS, true);
        device.ackFeatures(MODERN);
        Pair p = new Pair(0, MODERN, 256); // room for the descriptors of 60 chains, a third of them with three
        device.startQueue(0, p.rx);
        device.startQueue(1, p.tx);
        int chains = 2 * PairDataPath.TX_BATCH - 4; // two batches, the second one short
        int malformed = PairDataPath.TX_BATCH + 3;
        List<byte[]> expected = new java.util.ArrayList<>();
        long bytes = 0;
        for (int i = 0; i < chains; i++) {
            if (i == malformed) {
                p.txDriver.addChain(new byte[][] {header(0), new byte[13]}, new int[0]);
                continue;
            }
            byte[] frame = frame(60 + 37 * i, i);
            // every third frame split over three descriptors: one writev of three iovecs
            byte[][] segments = i % 3 == 0
                    ? new byte[][] {header(0), Arrays.copyOf(frame, 20), Arrays.copyOfRange(frame, 20, frame.length)}
                    : new byte[][] {concat(header(0), frame)};
            p.txDriver.addChain(segments, new int[0]);
            expected.add(concat(header(0), frame));
            bytes += frame.length;
        }

        device.handleKick(1);

        for (int i = 0; i < expected.size(); i++) {
            assertArrayEquals(expected.get(i), tap.receive(0), "frame " + i + " in ring order");
        }
        assertNull(tap.receive(0));
        assertEquals(chains, p.txDriver.usedIdx(), "every chain back, the malformed one included");
        assertEquals((long) expected.size(), device.counters().get("tx_frames"));
        assertEquals(bytes, device.counters().get("tx_bytes"));
        assertEquals(1L, device.counters().get("tx_malformed"));
        assertEquals(0L, device.counters().get("tx_dropped"));
    }

    @Test
    void throughIoUringAWriteTheTapRefusesIsCountedAndTheDrainGoesOn() {
        NetDevice device = device(1, ALL_OFFLOADS, true);
        Pair p = start(device, MODERN, 1)[0];
        tap.closePeer(0); // writes to a socket whose peer is gone fail with EPIPE (the JVM ignores SIGPIPE)
        for (int i = 0; i < 5; i++) {
            p.txDriver.addChain(new byte[][] {concat(header(0), frame(60, i))}, new int[0]);
        }

        device.handleKick(1);

        assertEquals(5, p.txDriver.usedIdx());
        assertEquals(5L, device.counters().get("tx_dropped"));
        assertEquals(0L, device.counters().get("tx_frames"));
    }

    @Test
    void aFrameFromTheTapLandsInOneRxChainWithNumBuffersSet() {
        NetDevice device = device(1, ALL_OFFLOADS);
        Pair p = start(device, MODERN, 1)[0];
        p.rxDriver.addChain(new byte[0][], new int[] {2048});
        byte[] frame = frame(1400, 5);
        // a real TAP leaves bytes 10-11 alone; the fake carries them, so send garbage the device must overwrite
        tap.send(0, concat(header(0x7777), frame));

        assertTrue(fire(0));

        MockSplitQueue.UsedElement used = p.rxDriver.pollUsed();
        assertEquals(VirtioNet.HDR_LEN + 1400, used.len());
        byte[] written = p.rxDriver.writtenBytes(used);
        assertArrayEquals(Arrays.copyOf(header(0), 10), Arrays.copyOf(written, 10), "header passed through unchanged");
        assertEquals(1, numBuffers(written));
        assertArrayEquals(frame, Arrays.copyOfRange(written, VirtioNet.HDR_LEN, written.length));
        assertTrue(p.rxCalls.count() >= 1, "RX signalled");
        assertEquals(1L, device.counters().get("rx_frames"));
        assertEquals(1400L, device.counters().get("rx_bytes"));
    }

    @Test
    void withMergeableBuffersAFrameSpansSmallChainsAndTheUnusedOnesServeTheNextFrame() {
        NetDevice device = device(1, ALL_OFFLOADS);
        Pair p = start(device, MODERN, 1)[0];
        for (int i = 0; i < 12; i++) {
            p.rxDriver.addChain(new byte[0][], new int[] {256});
        }
        byte[] big = frame(1000, 1);
        byte[] small = frame(60, 2);
        tap.send(0, concat(header(0), big));
        tap.send(0, concat(header(0), small));

        assertTrue(fire(0));

        byte[] got = new byte[0];
        for (int i = 0; i < 4; i++) { // 12 + 1000 bytes in 256-byte buffers: 4 chains
            MockSplitQueue.UsedElement used = p.rxDriver.pollUsed();
            assertEquals(i < 3 ? 256 : 1012 - 768, used.len());
            got = concat(got, p.rxDriver.writtenBytes(used));
        }
        assertEquals(4, numBuffers(got));
        assertArrayEquals(big, Arrays.copyOfRange(got, VirtioNet.HDR_LEN, got.length));
        MockSplitQueue.UsedElement next = p.rxDriver.pollUsed();
        assertEquals(VirtioNet.HDR_LEN + 60, next.len(), "the second frame in the fifth chain, not a later one");
        byte[] second = p.rxDriver.writtenBytes(next);
        assertEquals(1, numBuffers(second));
        assertArrayEquals(small, Arrays.copyOfRange(second, VirtioNet.HDR_LEN, second.length));
        assertNull(p.rxDriver.pollUsed());
        assertEquals(7, p.rx.availableCount(), "chains gathered but not needed were put back");
    }

    @Test
    void withoutMergeableBuffersEachFrameTakesOneChainAndNumBuffersIsOne() {
        NetDevice device = device(1, ALL_OFFLOADS);
        long acked = VirtioFeatures.VERSION_1;
        Pair p = start(device, acked, 1)[0];
        p.rxDriver.addChain(new byte[0][], new int[] {12, 1518});
        p.rxDriver.addChain(new byte[0][], new int[] {12, 1518});
        tap.send(0, concat(header(0), frame(1500, 1)));
        tap.send(0, concat(header(0), frame(64, 2)));

        assertTrue(fire(0));

        MockSplitQueue.UsedElement a = p.rxDriver.pollUsed();
        MockSplitQueue.UsedElement b = p.rxDriver.pollUsed();
        assertEquals(12 + 1500, a.len());
        assertEquals(12 + 64, b.len());
        assertEquals(1, numBuffers(p.rxDriver.writtenBytes(a)));
        assertEquals(1, numBuffers(p.rxDriver.writtenBytes(b)));
        assertArrayEquals(frame(64, 2), Arrays.copyOfRange(p.rxDriver.writtenBytes(b), 12, 12 + 64));
    }

    @Test
    void aLegacyDriverGetsTheTenByteHeaderAndNoNumBuffers() {
        NetDevice device = device(1, ALL_OFFLOADS);
        Pair p = start(device, 0, 1)[0];
        assertEquals(List.of(VirtioNet.HDR_LEN_LEGACY), tap.headerLengthCalls.subList(tap.headerLengthCalls.size() - 1,
                tap.headerLengthCalls.size()), "TUNSETVNETHDRSZ follows the negotiated header");
        p.rxDriver.addChain(new byte[0][], new int[] {2048});
        byte[] frame = frame(100, 9);
        byte[] header10 = Arrays.copyOf(header(0), 10);
        tap.send(0, concat(header10, frame));
        p.txDriver.addChain(new byte[][] {header10, frame}, new int[0]);

        assertTrue(fire(0));
        device.handleKick(1);

        MockSplitQueue.UsedElement used = p.rxDriver.pollUsed();
        assertEquals(10 + 100, used.len());
        assertArrayEquals(concat(header10, frame), p.rxDriver.writtenBytes(used));
        assertArrayEquals(concat(header10, frame), tap.receive(0));
    }

    /** Fills guest memory [gpa, gpa + len) with {@code b}, or returns it. */
    private byte[] guestBytes(long gpa, int len, Byte fill) {
        org.jvhost.spi.MemoryRegion region = memory.regionFor(gpa);
        java.nio.ByteBuffer window = region.window(gpa - region.guestAddress());
        int at = region.windowOffset(gpa - region.guestAddress());
        byte[] bytes = new byte[len];
        for (int i = 0; i < len; i++) {
            if (fill != null) {
                window.put(at + i, fill);
            }
            bytes[i] = window.get(at + i);
        }
        return bytes;
    }

    @Test
    void anRxChainPutBackUnusedKeepsAHeaderOfItsOwnAndEverythingBeyondItUntouched() {
        // before a read the device writes the header's last byte and the frame's first (to fetch those
        // lines for writing): only where a frame will go, never past a segment that holds the header alone
        NetDevice device = device(1, ALL_OFFLOADS);
        Pair p = start(device, VirtioFeatures.VERSION_1, 1)[0];
        int head = p.rxDriver.addChain(new byte[0][], new int[] {12, 100});
        long[] buffers = p.rxDriver.writableBuffers(head);
        long from = buffers[0];
        int span = (int) (buffers[2] + buffers[3] - from); // the header, the gap after it, the frame buffer
        guestBytes(from, span, (byte) 0x55);

        assertFalse(fire(0) && p.rxDriver.pollUsed() != null, "the TAP is empty");

        byte[] after = guestBytes(from, span, null);
        byte[] expected = new byte[span];
        Arrays.fill(expected, (byte) 0x55);
        assertArrayEquals(expected, after);
        assertEquals(1, p.rx.availableCount(), "the chain went back");

        tap.send(0, concat(header(0), frame(64, 3)));
        assertTrue(fire(0));
        byte[] written = p.rxDriver.writtenBytes(p.rxDriver.pollUsed());
        assertArrayEquals(frame(64, 3), Arrays.copyOfRange(written, 12, 12 + 64), "and then serves a frame");
    }

    @Test
    void withNoRxBuffersTheTapIsNotReadUntilTheDriverKicks() {
        NetDevice device = device(1, ALL_OFFLOADS);
        Pair p = start(device, MODERN, 1)[0];
        byte[] frame = frame(200, 4);
        tap.send(0, concat(header(0), frame));

        assertTrue(fire(0));
        RecordingContext.Watch watch = context.watchOn(tap.fd(0));
        assertTrue(watch.paused, "no buffers: the watch is paused (back-pressure)");
        assertFalse(fire(0), "a paused watch delivers nothing");
        assertEquals(1L, device.counters().get("rx_no_buffer"));
        assertEquals(0L, device.counters().get("rx_frames"));

        p.rxDriver.addChain(new byte[0][], new int[] {2048});
        p.rxDriver.addChain(new byte[0][], new int[] {2048});
        device.handleKick(0);

        assertFalse(watch.paused, "a kick resumes the watch, and a buffer is left for the next frame");
        MockSplitQueue.UsedElement used = p.rxDriver.pollUsed();
        assertNotNull(used, "the frame kept in the TAP is delivered on the kick");
        assertArrayEquals(frame, Arrays.copyOfRange(p.rxDriver.writtenBytes(used), 12, 212));
    }

    @Test
    void aFrameLargerThanTheBuffersIsDroppedAndTheBuffersReused() {
        NetDevice device = device(1, ALL_OFFLOADS);
        Pair p = start(device, VirtioFeatures.VERSION_1, 1)[0]; // one chain per frame
        p.rxDriver.addChain(new byte[0][], new int[] {300});
        tap.send(0, concat(header(0), frame(1000, 1)));
        tap.send(0, concat(header(0), frame(100, 2)));

        assertTrue(fire(0));

        MockSplitQueue.UsedElement used = p.rxDriver.pollUsed();
        assertEquals(12 + 100, used.len(), "the chain went to the next frame that fits");
        assertArrayEquals(frame(100, 2), Arrays.copyOfRange(p.rxDriver.writtenBytes(used), 12, 112));
        assertNull(p.rxDriver.pollUsed());
        assertEquals(1L, device.counters().get("rx_dropped_truncated"));
    }

    /** Frames 0..count-1 of 60 to 1500 bytes, queued on the fake TAP. */
    private List<byte[]> sendFrames(int count) {
        List<byte[]> sent = new java.util.ArrayList<>();
        for (int i = 0; i < count; i++) {
            byte[] f = frame(60 + (i * 397) % 1441, i);
            tap.send(0, concat(header(0), f));
            sent.add(f);
        }
        return sent;
    }

    /** Polls {@code frames} used entries: each holds the next frame of {@code sent}, in one chain. */
    private void assertReceivedInOrder(MockSplitQueue driver, List<byte[]> sent, int from, int frames) {
        for (int i = from; i < from + frames; i++) {
            MockSplitQueue.UsedElement used = driver.pollUsed();
            assertNotNull(used, "frame " + i);
            byte[] written = driver.writtenBytes(used);
            assertEquals(1, numBuffers(written), "frame " + i);
            assertArrayEquals(sent.get(i), Arrays.copyOfRange(written, VirtioNet.HDR_LEN, written.length), "frame " + i);
        }
    }

    @Test
    void throughIoUringFramesArriveInOrderInGrowingBatchesAndTheUnusedChainsGoBack() {
        NetDevice device = device(1, ALL_OFFLOADS, true);
        Pair p = start(device, MODERN, 1)[0];
        for (int i = 0; i < 60; i++) {
            p.rxDriver.addChain(new byte[0][], new int[] {2048});
        }
        List<byte[]> sent = sendFrames(40);

        assertTrue(fire(0)); // batches of 1, 2, 4, 8, 16, 32 slots: the last finds the TAP empty

        assertReceivedInOrder(p.rxDriver, sent, 0, 40);
        assertNull(p.rxDriver.pollUsed());
        assertEquals(20, p.rx.availableCount(), "chains popped for reads that found nothing were put back");
        assertEquals(40L, device.counters().get("rx_frames"));
        assertEquals(sent.stream().mapToLong(f -> f.length).sum(), device.counters().get("rx_bytes"));
        assertEquals(0L, device.counters().get("rx_errors"));

        List<byte[]> more = sendFrames(3);
        assertTrue(fire(0));
        assertReceivedInOrder(p.rxDriver, more, 0, 3);
        assertEquals(17, p.rx.availableCount());
    }

    @Test
    void aFrameReadAfterAReadThatFoundTheTapEmptyMovesUpIntoTheFreeChain() {
        NetDevice device = device(1, ALL_OFFLOADS);
        Pair p = start(device, MODERN, 1)[0];
        for (int i = 0; i < 8; i++) {
            p.rxDriver.addChain(new byte[0][], new int[] {2048});
        }
        List<byte[]> sent = sendFrames(8);
        tap.emptyRead = 3; // batches of 1 (read 0), 2 (reads 1-2), 4 (reads 3-6): the first of the third is empty

        assertTrue(fire(0));

        assertReceivedInOrder(p.rxDriver, sent, 0, 6); // frames 3-5 were read into chains 4-6, delivered in 3-5
        assertNull(p.rxDriver.pollUsed());
        assertEquals(2, p.rx.availableCount(), "the last two chains were put back for the frames still queued");
        assertTrue(fire(0));
        assertReceivedInOrder(p.rxDriver, sent, 6, 2);
        assertEquals(8L, device.counters().get("rx_frames"));
    }

    @Test
    void mergeableRxWaitsForRoomForAnMtuFrameRatherThanTruncate() {
        NetDevice device = device(1, ALL_OFFLOADS);
        Pair p = start(device, MODERN, 1)[0];
        p.rxDriver.addChain(new byte[0][], new int[] {512});
        tap.send(0, concat(header(0), frame(60, 1)));

        assertTrue(fire(0));
        assertNull(p.rxDriver.pollUsed(), "512 bytes could truncate a 1500-byte frame: not read yet");
        assertEquals(1, p.rx.availableCount(), "the chain was put back");

        for (int i = 0; i < 3; i++) {
            p.rxDriver.addChain(new byte[0][], new int[] {512});
        }
        device.handleKick(0);
        MockSplitQueue.UsedElement used = p.rxDriver.pollUsed();
        assertEquals(72, used.len());
    }

    @Test
    void eachQueuePairHasItsOwnTapQueueGroupAndWatch() {
        NetDevice device = device(2, ALL_OFFLOADS);
        assertFalse(tap.attached[1], "pair 1's TAP queue is detached until the driver enables it");
        Pair[] pairs = start(device, MODERN | VirtioNet.F_MQ, 2);
        assertTrue(tap.attached[1]);
        assertEquals(0, context.watchOn(tap.fd(0)).group);
        assertEquals(1, context.watchOn(tap.fd(1)).group);
        assertEquals(1, device.queueGroup(2));
        assertEquals(1, device.queueGroup(3));
        pairs[1].rxDriver.addChain(new byte[0][], new int[] {2048});
        tap.send(1, concat(header(0), frame(80, 1)));
        pairs[1].txDriver.addChain(new byte[][] {header(0), frame(90, 2)}, new int[0]);

        assertTrue(fire(1));
        device.handleKick(3);

        assertEquals(92, pairs[1].rxDriver.pollUsed().len());
        assertNull(pairs[0].rxDriver.pollUsed());
        assertArrayEquals(concat(header(0), frame(90, 2)), tap.receive(1));
        assertNull(tap.receive(0));

        device.stopQueue(2);
        assertFalse(tap.attached[1], "stopping RX detaches its TAP queue again");
        assertTrue(context.watches.stream().filter(w -> w.fd == tap.fd(1)).allMatch(w -> w.closed));
    }

    /**
     * A hot upgrade pauses the queues (pauseQueue) instead of stopping them: pair 1's TAP queue stays
     * attached, so what it holds is not purged (tun.c purges a detached queue), the state says it is
     * attached, and whoever starts the RX queue next reads the frame that came during the pause.
     */
    @Test
    void aPauseForAHotUpgradeKeepsTheTapQueueAttachedAndItsFrames() {
        NetDevice device = device(2, ALL_OFFLOADS);
        Pair[] pairs = start(device, MODERN | VirtioNet.F_MQ, 2);
        assertTrue(tap.attached[1]);

        assertSame(pairs[1].tx, device.pauseQueue(3));
        assertSame(pairs[1].rx, device.pauseQueue(2));
        tap.send(1, concat(header(0), frame(80, 1))); // arrives while paused
        assertTrue(tap.attached[1], "a paused RX queue's TAP queue stays attached");
        assertArrayEquals(new boolean[] {true, true}, NetState.read(device.saveState()).device().attached(),
                "the successor is told the TAP queue is attached");

        device.startQueue(2, pairs[1].rx); // the upgrade abandoned: this process serves on
        device.startQueue(3, pairs[1].tx);
        pairs[1].rxDriver.addChain(new byte[0][], new int[] {2048});
        assertTrue(fire(1));
        assertEquals(92, pairs[1].rxDriver.pollUsed().len(), "the frame that came during the pause is delivered");

        device.pauseQueue(0); // pair 0's queues, and a TX queue, pause as they stop
        assertSame(pairs[0].tx, device.pauseQueue(1));
        assertTrue(tap.attached[0]);
        device.stopQueue(2);
        assertFalse(tap.attached[1], "a stop (not a pause) still detaches");
    }

    @Test
    void offeredFeaturesFollowTheTapAndAckedOffloadsReachTunSetOffload() {
        NetDevice full = device(1, ALL_OFFLOADS);
        long f = full.features();
        assertTrue(VirtioFeatures.has(f, VirtioNet.F_MRG_RXBUF | VirtioNet.F_STATUS | VirtioNet.F_CSUM
                | VirtioNet.F_GUEST_CSUM | VirtioNet.F_HOST_TSO4 | VirtioNet.F_HOST_TSO6 | VirtioNet.F_GUEST_TSO4
                | VirtioNet.F_GUEST_TSO6 | VirtioNet.F_HOST_ECN | VirtioNet.F_GUEST_ECN | VirtioNet.F_HOST_UFO
                | VirtioNet.F_GUEST_UFO));
        assertTrue(VirtioFeatures.has(f, VirtioNet.F_CTRL_VQ | VirtioNet.F_CTRL_GUEST_OFFLOADS));
        assertEquals(0, f & (VirtioNet.F_MQ | VirtioNet.F_MAC | VirtioNet.F_MTU),
                "MQ, MAC and MTU only when configured");
        assertEquals(0, f & (VirtioNet.F_CTRL_RX | VirtioNet.F_CTRL_VLAN | VirtioNet.F_CTRL_MAC_ADDR
                | VirtioNet.F_GUEST_ANNOUNCE), "control commands that are not served are not offered");
        assertEquals(0, f & VirtioFeatures.VERSION_1, "transport bits are the host's to add");

        full.ackFeatures(VirtioFeatures.VERSION_1 | VirtioNet.F_GUEST_CSUM | VirtioNet.F_GUEST_TSO4);
        assertEquals(TunOffloads.TUN_F_CSUM | TunOffloads.TUN_F_TSO4, tap.offloadCalls.get(tap.offloadCalls.size() - 1));
        full.reset();
        assertEquals(0, tap.offloadCalls.get(tap.offloadCalls.size() - 1), "reset turns receive offloads off");
        tap.close();

        NetDevice csumOnly = device(1, TunOffloads.TUN_F_CSUM);
        long g = csumOnly.features();
        assertTrue(VirtioFeatures.has(g, VirtioNet.F_GUEST_CSUM | VirtioNet.F_HOST_TSO4));
        assertEquals(0, g & (VirtioNet.F_GUEST_TSO4 | VirtioNet.F_GUEST_TSO6 | VirtioNet.F_GUEST_ECN
                | VirtioNet.F_GUEST_UFO), "the TAP cannot deliver TSO/UFO frames: not offered");
        tap.close();

        NetDevice none = device(1, 0);
        assertEquals(0, none.features() & (VirtioNet.F_GUEST_CSUM | VirtioNet.F_CTRL_GUEST_OFFLOADS),
                "no receive offload to switch: no CTRL_GUEST_OFFLOADS");
        assertTrue(VirtioFeatures.has(none.features(), VirtioNet.F_CTRL_VQ));
    }

    @Test
    void configSpaceCarriesMacStatusPairsAndMtu() {
        tap = new SocketPairTap(2, 0);
        byte[] mac = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
        NetDevice device = new NetDevice("net@test", new NetConfig("t", null, mac, 9000, 2, NetConfig.Uring.AUTO), tap, context);
        assertTrue(VirtioFeatures.has(device.features(), VirtioNet.F_MAC | VirtioNet.F_MTU | VirtioNet.F_MQ));
        byte[] config = new byte[device.configSize()];
        device.readConfig(0, config);
        assertArrayEquals(new byte[] {0x52, 0x54, 0, 0x12, 0x34, 0x56, 1, 0, 2, 0, 0x28, 0x23}, config);
        assertEquals(5, device.maxQueues(), "two pairs and the control queue");
    }

    // ---- control queue ------------------------------------------------------------------------

    private static final long CTRL = VirtioNet.F_CTRL_VQ;

    /** The driver side of a control queue in the memory area after the data pairs. */
    private final class Control {
        final MockSplitQueue driver = MockSplitQueue.create(memory, RING, 0x10000 + 7 * AREA, AREA);
        final NetDevice device;
        final int index;

        Control(NetDevice device, long acked, int pairs) {
            this.device = device;
            this.index = VirtioNet.controlQueueIndex(acked, pairs);
            device.startQueue(index, driver.deviceQueue(index, acked, 0, new CountingNotifier()));
        }

        /** Sends one command (class, command, data) with a one-byte ack; returns the ack. */
        int send(int cls, int cmd, byte... data) {
            driver.addChain(new byte[][] {{(byte) cls, (byte) cmd}, data}, new int[] {1});
            device.handleKick(index);
            MockSplitQueue.UsedElement used = driver.pollUsed();
            assertEquals(1, used.len(), "the ack byte is written");
            return driver.writtenBytes(used)[0];
        }
    }

    private static byte[] le16(int v) {
        return new byte[] {(byte) v, (byte) (v >>> 8)};
    }

    private static byte[] le64(long v) {
        byte[] b = new byte[8];
        for (int i = 0; i < 8; i++) {
            b[i] = (byte) (v >>> (8 * i));
        }
        return b;
    }

    @Test
    void vqPairsSetAttachesOnlyTheFirstPairsTapQueues() {
        NetDevice device = device(3, ALL_OFFLOADS);
        long acked = MODERN | VirtioNet.F_MQ | CTRL;
        start(device, acked, 3);
        assertArrayEquals(new boolean[] {true, true, true}, tap.attached,
                "without a control queue the front-end steers with ring enables: every started pair is attached");
        assertEquals(7, device.maxQueues());
        assertEquals(3, device.queueGroup(6), "the control queue has a group of its own");

        Control ctrl = new Control(device, acked, 3);
        assertEquals(6, ctrl.index, "the control queue is the last: 2 * max_virtqueue_pairs with MQ");
        assertArrayEquals(new boolean[] {true, false, false}, tap.attached,
                "with the control queue handed over, pair 0 only until VQ_PAIRS_SET");

        assertEquals(VirtioNet.CTRL_OK, ctrl.send(VirtioNet.CTRL_MQ, VirtioNet.CTRL_MQ_VQ_PAIRS_SET, le16(2)));
        assertArrayEquals(new boolean[] {true, true, false}, tap.attached);
        assertEquals(VirtioNet.CTRL_ERR, ctrl.send(VirtioNet.CTRL_MQ, VirtioNet.CTRL_MQ_VQ_PAIRS_SET, le16(4)),
                "more pairs than max_virtqueue_pairs");
        assertEquals(VirtioNet.CTRL_ERR, ctrl.send(VirtioNet.CTRL_MQ, VirtioNet.CTRL_MQ_VQ_PAIRS_SET, le16(0)));
        assertArrayEquals(new boolean[] {true, true, false}, tap.attached, "refused commands change nothing");
        assertEquals(VirtioNet.CTRL_OK, ctrl.send(VirtioNet.CTRL_MQ, VirtioNet.CTRL_MQ_VQ_PAIRS_SET, le16(3)));
        assertArrayEquals(new boolean[] {true, true, true}, tap.attached);

        device.stopQueue(2);
        assertArrayEquals(new boolean[] {true, false, true}, tap.attached, "a stopped RX queue's TAP queue is detached");
        device.stopQueue(ctrl.index);
        device.startQueue(2, new Pair(1, acked).rx);
        assertArrayEquals(new boolean[] {true, true, true}, tap.attached,
                "the driver's pair count survives a stop of the control queue");
        assertEquals(2L, device.counters().get("ctrl_commands") - device.counters().get("ctrl_rejected"));
        assertEquals(2L, device.counters().get("ctrl_rejected"));
    }

    @Test
    void theTxQueuesAreTheTransmitQueuesTheHostDiscardsOnWhileDisabled() {
        NetDevice device = device(2, ALL_OFFLOADS);
        device.ackFeatures(MODERN | CTRL | VirtioNet.F_MQ);
        assertTrue(device.isTransmitQueue(1));
        assertTrue(device.isTransmitQueue(3));
        assertFalse(device.isTransmitQueue(0), "RX");
        assertFalse(device.isTransmitQueue(2), "RX");
        assertFalse(device.isTransmitQueue(4), "the control queue");
    }

    @Test
    void withoutMqTheControlQueueIsQueueTwoAndPairCommandsAreRefused() {
        NetDevice device = device(2, ALL_OFFLOADS);
        long acked = MODERN | CTRL;
        start(device, acked, 1);
        assertEquals(2, device.queueGroup(2), "queue 2 is the control queue (N = 1 without MQ), group 2");
        Control ctrl = new Control(device, acked, 2);
        assertEquals(2, ctrl.index);
        assertEquals(VirtioNet.CTRL_ERR, ctrl.send(VirtioNet.CTRL_MQ, VirtioNet.CTRL_MQ_VQ_PAIRS_SET, le16(2)),
                "MQ was not negotiated");
        assertArrayEquals(new boolean[] {true, false}, tap.attached);
    }

    @Test
    void guestOffloadsSetReachesTheTapAndOffloadsNeverNegotiatedAreRefused() {
        NetDevice device = device(1, ALL_OFFLOADS);
        long acked = MODERN | CTRL | VirtioNet.F_CTRL_GUEST_OFFLOADS | VirtioNet.F_GUEST_CSUM | VirtioNet.F_GUEST_TSO4;
        start(device, acked, 1);
        assertEquals(TunOffloads.TUN_F_CSUM | TunOffloads.TUN_F_TSO4, tap.offloadCalls.get(tap.offloadCalls.size() - 1));
        Control ctrl = new Control(device, acked, 1);
        int calls = tap.offloadCalls.size();

        assertEquals(VirtioNet.CTRL_OK, ctrl.send(VirtioNet.CTRL_GUEST_OFFLOADS, VirtioNet.CTRL_GUEST_OFFLOADS_SET,
                le64(VirtioNet.F_GUEST_CSUM)), "TSO off (what Linux does for XDP or LRO off)");
        assertEquals(List.of(TunOffloads.TUN_F_CSUM), tap.offloadCalls.subList(calls, tap.offloadCalls.size()));
        assertEquals(VirtioNet.CTRL_ERR, ctrl.send(VirtioNet.CTRL_GUEST_OFFLOADS, VirtioNet.CTRL_GUEST_OFFLOADS_SET,
                le64(VirtioNet.F_GUEST_CSUM | VirtioNet.F_GUEST_TSO6)), "GUEST_TSO6 was not negotiated");
        assertEquals(VirtioNet.CTRL_ERR, ctrl.send(VirtioNet.CTRL_GUEST_OFFLOADS, VirtioNet.CTRL_GUEST_OFFLOADS_SET,
                le64(1L << 40)), "not an offload bit at all");
        assertEquals(calls + 1, tap.offloadCalls.size(), "refused: the TAP is untouched");
        assertEquals(VirtioNet.CTRL_OK, ctrl.send(VirtioNet.CTRL_GUEST_OFFLOADS, VirtioNet.CTRL_GUEST_OFFLOADS_SET,
                le64(VirtioNet.F_GUEST_CSUM | VirtioNet.F_GUEST_TSO4)));
        assertEquals(VirtioNet.CTRL_OK, ctrl.send(VirtioNet.CTRL_GUEST_OFFLOADS, VirtioNet.CTRL_GUEST_OFFLOADS_SET,
                le64(0)));
        assertEquals(List.of(TunOffloads.TUN_F_CSUM, TunOffloads.TUN_F_CSUM | TunOffloads.TUN_F_TSO4, 0),
                tap.offloadCalls.subList(calls, tap.offloadCalls.size()));
        assertEquals(VirtioNet.CTRL_ERR, ctrl.send(VirtioNet.CTRL_GUEST_OFFLOADS, VirtioNet.CTRL_GUEST_OFFLOADS_SET,
                new byte[7]), "seven bytes are no le64");
    }

    @Test
    void commandsNotOfferedAreAnsweredErr() {
        NetDevice device = device(2, ALL_OFFLOADS);
        long acked = MODERN | CTRL | VirtioNet.F_MQ; // no CTRL_GUEST_OFFLOADS
        start(device, acked, 2);
        Control ctrl = new Control(device, acked, 2);
        assertEquals(VirtioNet.CTRL_ERR, ctrl.send(0, 0, (byte) 1), "RX mode (promiscuous)");
        assertEquals(VirtioNet.CTRL_ERR, ctrl.send(1, 1, new byte[6]), "MAC_ADDR_SET");
        assertEquals(VirtioNet.CTRL_ERR, ctrl.send(2, 0, le16(5)), "VLAN_ADD");
        assertEquals(VirtioNet.CTRL_ERR, ctrl.send(3, 0), "ANNOUNCE_ACK");
        assertEquals(VirtioNet.CTRL_ERR, ctrl.send(VirtioNet.CTRL_MQ, 1, new byte[16]), "RSS_CONFIG");
        assertEquals(VirtioNet.CTRL_ERR, ctrl.send(VirtioNet.CTRL_GUEST_OFFLOADS, VirtioNet.CTRL_GUEST_OFFLOADS_SET,
                le64(VirtioNet.F_GUEST_CSUM)), "CTRL_GUEST_OFFLOADS was not negotiated");
        assertEquals(VirtioNet.CTRL_ERR, ctrl.send(0xff, 0xff));
        assertEquals(VirtioNet.CTRL_OK, ctrl.send(VirtioNet.CTRL_MQ, VirtioNet.CTRL_MQ_VQ_PAIRS_SET, le16(2)));
    }

    @Test
    void malformedControlChainsAreRefusedWithoutHarm() {
        NetDevice device = device(2, ALL_OFFLOADS);
        long acked = MODERN | CTRL | VirtioNet.F_MQ;
        start(device, acked, 2);
        Control ctrl = new Control(device, acked, 2);
        MockSplitQueue d = ctrl.driver;

        d.addChain(new byte[][] {{VirtioNet.CTRL_MQ}}, new int[] {1});                     // no command byte
        d.addChain(new byte[0][], new int[] {1});                                          // nothing readable
        d.addChain(new byte[][] {{VirtioNet.CTRL_MQ, 0}, {2}}, new int[] {1});             // le16 cut short
        d.addChain(new byte[][] {{VirtioNet.CTRL_MQ, 0}, le16(2)}, new int[0]);            // no room for the ack
        d.addChain(new byte[][] {{VirtioNet.CTRL_MQ, 0}, le16(2)}, new int[] {4, 4});      // roomy ack: fine
        device.handleKick(ctrl.index);

        int[] acks = new int[4];
        for (int i = 0; i < 3; i++) {
            MockSplitQueue.UsedElement used = d.pollUsed();
            assertEquals(1, used.len());
            acks[i] = d.writtenBytes(used)[0];
        }
        assertEquals(0, d.pollUsed().len(), "no writable byte: returned unanswered");
        MockSplitQueue.UsedElement last = d.pollUsed();
        assertEquals(1, last.len());
        assertEquals(VirtioNet.CTRL_OK, d.writtenBytes(last)[0], "the queue keeps serving after bad chains");
        assertArrayEquals(new int[] {VirtioNet.CTRL_ERR, VirtioNet.CTRL_ERR, VirtioNet.CTRL_ERR, 0}, acks);
        assertEquals(1L, device.counters().get("ctrl_malformed"));
        assertEquals(4L, device.counters().get("ctrl_commands"));
        assertEquals(3L, device.counters().get("ctrl_rejected"));
        assertArrayEquals(new boolean[] {true, true}, tap.attached);
    }

    @Test
    void aFrontEndThatKeepsTheControlQueueSteersWithRingsAndHasNoQueueBeyondThePairs() {
        NetDevice device = device(2, ALL_OFFLOADS);
        long acked = MODERN | VirtioNet.F_MQ; // what QEMU 7.2 acks to a vhost-user back-end: no CTRL_VQ
        start(device, acked, 2);
        assertArrayEquals(new boolean[] {true, true}, tap.attached);
        assertEquals(2, device.queueGroup(4));
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> device.handleKick(4), "queue 4 is no control queue without CTRL_VQ");
        device.reset();
    }

    @Test
    void theSteadyDataPathAllocatesNothing() {
        assertSteadyDataPathAllocatesNothing(false);
    }

    @Test
    void theSteadyDataPathThroughIoUringAllocatesNothing() {
        assertSteadyDataPathAllocatesNothing(true);
    }

    private void assertSteadyDataPathAllocatesNothing(boolean batched) {
        NetDevice device = device(1, ALL_OFFLOADS, batched);
        Pair p = start(device, MODERN, 1)[0];
        byte[] wire = concat(header(0), frame(200, 1));
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long tid = Thread.currentThread().getId();
        int clean = 0;
        for (int round = 0; round < 2000 && clean < 50; round++) {
            // set-up (driver side, test side) allocates; measure only the device's calls
            for (int i = 0; i < 8; i++) {
                p.rxDriver.addChain(new byte[0][], new int[] {2048});
                p.txDriver.addChain(new byte[][] {wire}, new int[0]);
                tap.send(0, wire);
            }
            long before = mx.getThreadAllocatedBytes(tid);
            device.handleKick(1);
            context.watchOn(tap.fd(0)).onReadable.run();
            long allocated = mx.getThreadAllocatedBytes(tid) - before;
            clean = allocated == 0 ? clean + 1 : 0;
            while (p.rxDriver.pollUsed() != null) { }
            while (p.txDriver.pollUsed() != null) { }
            while (tap.receive(0) != null) { }
        }
        assertEquals(50, clean, "50 consecutive rounds of 8 TX + 8 RX frames without allocation");
    }
}
