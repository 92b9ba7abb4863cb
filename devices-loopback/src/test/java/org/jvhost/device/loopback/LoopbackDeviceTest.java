package org.jvhost.device.loopback;

import static org.jvhost.testkit.NetFrames.concat;
import static org.jvhost.testkit.NetFrames.numBuffers;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.jvhost.engine.virtq.SplitQueue;
import org.jvhost.engine.virtq.UsedRingLayout;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.spi.virtio.VirtioNet;
import org.jvhost.testkit.CountingNotifier;
import org.jvhost.testkit.FakeGuestMemory;
import org.jvhost.testkit.MockSplitQueue;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The loopback device driven as a guest would: driver-side mock rings in fake guest memory, the engine's
 * SplitQueue on the device side, kicks delivered by calling handleKick.
 */
@Timeout(value = 10, unit = TimeUnit.SECONDS)
class LoopbackDeviceTest {
    private static final int RING = 64;
    private static final long AREA = 1 << 20;
    private static final byte[] DST = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    private static final byte[] SRC = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};

    private final FakeGuestMemory memory = FakeGuestMemory.of(0x10000, (int) (8 * AREA));

    /** RX and TX of one pair: driver side and device side. */
    private final class Pair {
        final MockSplitQueue rxDriver;
        final MockSplitQueue txDriver;
        final CountingNotifier rxCalls = new CountingNotifier();
        final CountingNotifier txCalls = new CountingNotifier();
        final SplitQueue rx;
        final SplitQueue tx;

        Pair(int n, long features) {
            rxDriver = MockSplitQueue.create(memory, RING, 0x10000 + (2L * n) * AREA, AREA);
            txDriver = MockSplitQueue.create(memory, RING, 0x10000 + (2L * n + 1) * AREA, AREA);
            rx = rxDriver.deviceQueue(2 * n, features, 0, rxCalls);
            tx = txDriver.deviceQueue(2 * n + 1, features, 0, txCalls);
        }
    }

    private static LoopbackDevice device(int pairs, boolean mrg) {
        return new LoopbackDevice("loopback@test", new LoopbackConfig(SRC, pairs, mrg));
    }

    /** Negotiates everything the device offers plus VERSION_1, and starts all queues of {@code pairs}. */
    private static long negotiateAndStart(LoopbackDevice device, Pair... pairs) {
        long acked = device.features() | VirtioFeatures.VERSION_1;
        device.ackFeatures(acked);
        for (int n = 0; n < pairs.length; n++) {
            device.startQueue(2 * n, pairs[n].rx);
            device.startQueue(2 * n + 1, pairs[n].tx);
        }
        return acked;
    }

    private Pair pair(int n, boolean mrg) {
        return new Pair(n, VirtioFeatures.VERSION_1 | (mrg ? VirtioNet.F_MRG_RXBUF : 0));
    }

    /** A frame: dst, src, EtherType 0x88b5 (local experimental), then a counting payload. */
    private static byte[] frame(int length) {
        byte[] f = new byte[length];
        System.arraycopy(DST, 0, f, 0, 6);
        System.arraycopy(SRC, 0, f, 6, 6);
        f[12] = (byte) 0x88;
        f[13] = (byte) 0xb5;
        for (int i = 14; i < length; i++) {
            f[i] = (byte) (i * 7);
        }
        return f;
    }

    /** What the guest should receive: MACs swapped, the rest untouched. */
    private static byte[] reflected(byte[] frame) {
        byte[] r = frame.clone();
        System.arraycopy(frame, 6, r, 0, 6);
        System.arraycopy(frame, 0, r, 6, 6);
        return r;
    }

    /** A TX header the device must consume, not copy: non-zero so a copy would show. */
    private static byte[] txHeader() {
        byte[] h = new byte[VirtioNet.HDR_LEN];
        Arrays.fill(h, (byte) 0x5a);
        return h;
    }

    private static void send(Pair p, byte[] frame) {
        p.txDriver.addChain(new byte[][] {txHeader(), frame}, new int[0]);
    }

    @Test
    void aTransmittedFrameComesBackOnRxWithMacsSwapped() {
        LoopbackDevice device = device(1, true);
        Pair p = pair(0, true);
        negotiateAndStart(device, p);
        byte[] frame = frame(60);
        p.rxDriver.addChain(new byte[0][], new int[] {2048});
        send(p, frame);

        device.handleKick(1);

        MockSplitQueue.UsedElement rx = p.rxDriver.pollUsed();
        assertEquals(VirtioNet.HDR_LEN + 60, rx.len());
        byte[] written = p.rxDriver.writtenBytes(rx);
        byte[] header = Arrays.copyOf(written, VirtioNet.HDR_LEN);
        assertEquals(1, numBuffers(header));
        header[VirtioNet.HDR_NUM_BUFFERS] = 0;
        assertArrayEquals(new byte[VirtioNet.HDR_LEN], header, "header zero except num_buffers");
        assertArrayEquals(reflected(frame), Arrays.copyOfRange(written, VirtioNet.HDR_LEN, written.length));
        assertNull(p.rxDriver.pollUsed());

        MockSplitQueue.UsedElement tx = p.txDriver.pollUsed();
        assertEquals(0, tx.len(), "TX chains come back with nothing written");
        assertTrue(p.rxCalls.count() >= 1, "RX signalled");
        assertTrue(p.txCalls.count() >= 1, "TX signalled");
        assertEquals(Map.of("tx_frames", 1L, "tx_bytes", 60L, "rx_frames", 1L, "rx_bytes", 60L,
                "rx_dropped_no_buffer", 0L, "tx_dropped_malformed", 0L, "announcements", 0L), device.counters());
        assertEquals(Map.of("rx_frames", 1L, "rx_bytes", 60L, "rx_dropped_no_buffer", 0L), device.queueCounters(0));
        assertEquals(Map.of("tx_frames", 1L, "tx_bytes", 60L, "tx_dropped_malformed", 0L), device.queueCounters(1));
        assertEquals(Map.of(), device.queueCounters(2), "no such queue");
    }

    @Test
    void aFrameInOneTxDescriptorWithItsHeaderIsReflectedToo() {
        LoopbackDevice device = device(1, true);
        Pair p = pair(0, true);
        negotiateAndStart(device, p);
        byte[] frame = frame(1514);
        p.rxDriver.addChain(new byte[0][], new int[] {2048});
        p.txDriver.addChain(new byte[][] {concat(txHeader(), frame)}, new int[0]);

        device.handleKick(1);

        byte[] written = p.rxDriver.writtenBytes(p.rxDriver.pollUsed());
        assertArrayEquals(reflected(frame), Arrays.copyOfRange(written, VirtioNet.HDR_LEN, written.length));
    }

    @Test
    void macAddressesSplitAcrossTxDescriptorsAreStillSwapped() {
        LoopbackDevice device = device(1, true);
        Pair p = pair(0, true);
        negotiateAndStart(device, p);
        byte[] frame = frame(100);
        p.rxDriver.addChain(new byte[0][], new int[] {2048});
        p.txDriver.addChain(new byte[][] {txHeader(), Arrays.copyOfRange(frame, 0, 7),
            Arrays.copyOfRange(frame, 7, frame.length)}, new int[0]);

        device.handleKick(1);

        byte[] written = p.rxDriver.writtenBytes(p.rxDriver.pollUsed());
        assertArrayEquals(new byte[] {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}, Arrays.copyOf(written, VirtioNet.HDR_LEN));
        assertArrayEquals(reflected(frame), Arrays.copyOfRange(written, VirtioNet.HDR_LEN, written.length));
    }

    /**
     * One burst whose frames take every path in turn: a run is ended by a frame split across TX
     * descriptors, a malformed one, and one that fits no single RX buffer (its buffer goes back and it
     * spans three); each is reflected in its place, and RX buffers are used in the order posted.
     */
    @Test
    void aBurstMixingLayoutsReflectsEveryFrameInOrder() {
        LoopbackDevice device = device(1, true);
        Pair p = pair(0, true);
        negotiateAndStart(device, p);
        int[] rxSizes = {2048, 2048, 2048, 40, 40, 40, 2048};
        for (int size : rxSizes) {
            p.rxDriver.addChain(new byte[0][], new int[] {size});
        }
        byte[][] frames = {frame(60), frame(64), frame(70), frame(100), frame(61)};
        send(p, frames[0]);
        send(p, frames[1]);
        p.txDriver.addChain(new byte[][] {txHeader(), Arrays.copyOfRange(frames[2], 0, 7),
            Arrays.copyOfRange(frames[2], 7, frames[2].length)}, new int[0]);
        send(p, new byte[13]);                          // malformed
        send(p, frames[3]);                             // 112 bytes: the 40-byte buffer goes back, then three
        send(p, frames[4]);

        device.handleKick(1);

        int[][] expected = {{0}, {1}, {2}, {3, 4, 5}, {6}}; // frame -> RX used elements, in ring order
        for (int f = 0; f < frames.length; f++) {
            byte[] all = new byte[0];
            for (int ignored : expected[f]) {
                all = concat(all, p.rxDriver.writtenBytes(p.rxDriver.pollUsed()));
            }
            assertEquals(expected[f].length, numBuffers(all), "num_buffers of frame " + f);
            assertArrayEquals(reflected(frames[f]), Arrays.copyOfRange(all, VirtioNet.HDR_LEN, all.length),
                    "frame " + f);
        }
        assertNull(p.rxDriver.pollUsed());
        for (int i = 0; i < 6; i++) {
            assertEquals(0, p.txDriver.pollUsed().len());
        }
        Map<String, Long> c = device.counters();
        assertEquals(5L, c.get("tx_frames"));
        assertEquals(5L, c.get("rx_frames"));
        assertEquals(355L, c.get("rx_bytes"));
        assertEquals(1L, c.get("tx_dropped_malformed"));
    }

    /**
     * The header is stored only where the buffer does not hold it already (FrameReflector.putHeader):
     * stale bytes in either of its two words must still be overwritten. The first buffer is stale in
     * both, the second only in bytes 8-11 (num_buffers and the field before it).
     */
    @Test
    void aStaleHeaderInTheRxBufferIsOverwritten() {
        LoopbackDevice device = device(1, false);
        Pair p = pair(0, false);
        negotiateAndStart(device, p);
        byte[] stale = new byte[8192];
        Arrays.fill(stale, (byte) 0x77);
        memory.write(p.rxDriver.dataGpa(), stale);
        p.rxDriver.addChain(new byte[0][], new int[] {2048});
        p.rxDriver.addChain(new byte[0][], new int[] {2048});
        memory.write(p.rxDriver.dataGpa() + 2048, new byte[8]); // the second buffer: bytes 0-7 right already
        byte[] frame = frame(64);
        send(p, frame);
        send(p, frame);

        device.handleKick(1);

        byte[] expected = new byte[VirtioNet.HDR_LEN];
        expected[VirtioNet.HDR_NUM_BUFFERS] = 1;
        for (int f = 0; f < 2; f++) {
            byte[] written = p.rxDriver.writtenBytes(p.rxDriver.pollUsed());
            assertArrayEquals(expected, Arrays.copyOf(written, VirtioNet.HDR_LEN), "header of frame " + f);
            assertArrayEquals(reflected(frame), Arrays.copyOfRange(written, VirtioNet.HDR_LEN, written.length));
        }
    }

    @Test
    void theLegacyHeaderIsTenZeroBytes() {
        LoopbackDevice device = device(1, false);
        device.ackFeatures(VirtioNet.F_MAC);            // neither VERSION_1 nor MRG_RXBUF: 10-byte header
        Pair p = new Pair(0, 0);
        device.startQueue(0, p.rx);
        device.startQueue(1, p.tx);
        byte[] garbage = new byte[4096];
        Arrays.fill(garbage, (byte) 0x77);
        memory.write(p.rxDriver.dataGpa(), garbage);    // stale bytes where the RX buffer will be
        byte[] frame = frame(64);
        p.rxDriver.addChain(new byte[0][], new int[] {2048});
        p.txDriver.addChain(new byte[][] {new byte[VirtioNet.HDR_LEN_LEGACY], frame}, new int[0]);

        device.handleKick(1);

        MockSplitQueue.UsedElement e = p.rxDriver.pollUsed();
        assertEquals(VirtioNet.HDR_LEN_LEGACY + frame.length, e.len());
        byte[] written = p.rxDriver.writtenBytes(e);
        assertArrayEquals(new byte[VirtioNet.HDR_LEN_LEGACY], Arrays.copyOf(written, VirtioNet.HDR_LEN_LEGACY));
        assertArrayEquals(reflected(frame), Arrays.copyOfRange(written, VirtioNet.HDR_LEN_LEGACY, written.length));
    }

    @Test
    void mergeableBuffersLetAFrameSpanThreeSmallRxChains() {
        LoopbackDevice device = device(1, true);
        Pair p = pair(0, true);
        negotiateAndStart(device, p);
        byte[] frame = frame(100);                      // 12 + 100 = 112 bytes: 40 + 40 + 32
        for (int i = 0; i < 4; i++) {
            p.rxDriver.addChain(new byte[0][], new int[] {40});
        }
        send(p, frame);

        device.handleKick(1);

        MockSplitQueue.UsedElement a = p.rxDriver.pollUsed();
        MockSplitQueue.UsedElement b = p.rxDriver.pollUsed();
        MockSplitQueue.UsedElement c = p.rxDriver.pollUsed();
        assertNull(p.rxDriver.pollUsed(), "the fourth buffer stays available");
        assertEquals(40, a.len());
        assertEquals(40, b.len());
        assertEquals(32, c.len());
        byte[] all = concat(p.rxDriver.writtenBytes(a), p.rxDriver.writtenBytes(b), p.rxDriver.writtenBytes(c));
        assertEquals(3, numBuffers(all));
        assertArrayEquals(reflected(frame), Arrays.copyOfRange(all, VirtioNet.HDR_LEN, all.length));
        assertEquals(1, p.rx.availableCount());
    }

    @Test
    void rxBuffersSmallerThanTheHeaderStillGetEveryByteInOrder() {
        LoopbackDevice device = device(1, true);
        Pair p = pair(0, true);
        negotiateAndStart(device, p);
        byte[] frame = frame(20);                       // 32 bytes over 8-byte buffers: 4 chains
        for (int i = 0; i < 4; i++) {
            p.rxDriver.addChain(new byte[0][], new int[] {8});
        }
        send(p, frame);

        device.handleKick(1);

        byte[][] parts = new byte[4][];
        for (int i = 0; i < 4; i++) {
            MockSplitQueue.UsedElement e = p.rxDriver.pollUsed();
            assertEquals(8, e.len());
            parts[i] = p.rxDriver.writtenBytes(e);
        }
        byte[] all = concat(parts);
        assertEquals(4, numBuffers(all));
        assertArrayEquals(reflected(frame), Arrays.copyOfRange(all, VirtioNet.HDR_LEN, all.length));
    }

    @Test
    void withoutMergeableBuffersAFrameThatDoesNotFitOneChainIsDroppedAndTheChainKept() {
        LoopbackDevice device = device(1, false);
        Pair p = pair(0, false);
        long acked = negotiateAndStart(device, p);
        assertEquals(0, acked & VirtioNet.F_MRG_RXBUF, "mrg_rxbuf=off is not offered");
        p.rxDriver.addChain(new byte[0][], new int[] {64});
        p.rxDriver.addChain(new byte[0][], new int[] {64});
        send(p, frame(100));                            // 112 > 64
        send(p, frame(50));                             // 62 fits the first chain

        device.handleKick(1);

        MockSplitQueue.UsedElement rx = p.rxDriver.pollUsed();
        assertEquals(62, rx.len());
        assertEquals(1, numBuffers(p.rxDriver.writtenBytes(rx)), "num_buffers is 1 without MRG_RXBUF");
        assertNull(p.rxDriver.pollUsed());
        assertEquals(1, p.rx.availableCount(), "the dropped frame took no chain");
        assertEquals(0, p.txDriver.pollUsed().len());
        assertEquals(0, p.txDriver.pollUsed().len());
        assertEquals(1L, device.counters().get("rx_dropped_no_buffer"));
        assertEquals(1L, device.counters().get("rx_frames"));
        assertEquals(2L, device.counters().get("tx_frames"));
    }

    @Test
    void tooFewMergeableBuffersDropTheFrameAndPutThemBack() {
        LoopbackDevice device = device(1, true);
        Pair p = pair(0, true);
        negotiateAndStart(device, p);
        p.rxDriver.addChain(new byte[0][], new int[] {40});
        p.rxDriver.addChain(new byte[0][], new int[] {40});
        send(p, frame(100));                            // needs 112, 80 posted

        device.handleKick(1);

        assertNull(p.rxDriver.pollUsed());
        assertEquals(2, p.rx.availableCount(), "both partially taken chains were put back");
        assertEquals(0, p.txDriver.pollUsed().len());
        assertEquals(1L, device.counters().get("rx_dropped_no_buffer"));
    }

    @Test
    void withNoRxBufferTheFrameIsDroppedAndCountedAndTxStillCompletes() {
        LoopbackDevice device = device(1, true);
        Pair p = pair(0, true);
        negotiateAndStart(device, p);
        for (int i = 0; i < 3; i++) {
            send(p, frame(60));
        }

        device.handleKick(1);

        for (int i = 0; i < 3; i++) {
            assertEquals(0, p.txDriver.pollUsed().len());
        }
        assertNull(p.rxDriver.pollUsed());
        assertEquals(0, p.rxCalls.count(), "nothing delivered, RX not signalled");
        assertEquals(3L, device.counters().get("rx_dropped_no_buffer"));
        assertEquals(3L, device.counters().get("tx_frames"));
        assertEquals(0L, device.counters().get("rx_frames"));
    }

    @Test
    void aDisabledOrStoppedRxQueueGetsNothing() {
        LoopbackDevice device = device(1, true);
        Pair p = pair(0, true);
        negotiateAndStart(device, p);
        p.rxDriver.addChain(new byte[0][], new int[] {2048});
        p.rx.setEnabled(false);
        send(p, frame(60));
        device.handleKick(1);
        assertNull(p.rxDriver.pollUsed());

        assertSame(p.rx, device.stopQueue(0));
        send(p, frame(60));
        device.handleKick(1);
        assertEquals(2L, device.counters().get("rx_dropped_no_buffer"));
        assertEquals(0, p.txDriver.pollUsed().len());
        assertEquals(0, p.txDriver.pollUsed().len());
    }

    @Test
    void malformedFramesAreDroppedCountedAndReturned() {
        LoopbackDevice device = device(1, true);
        Pair p = pair(0, true);
        negotiateAndStart(device, p);
        p.rxDriver.addChain(new byte[0][], new int[] {2048});
        send(p, new byte[13]);                          // shorter than an Ethernet header
        p.txDriver.addChain(new byte[][] {new byte[8]}, new int[0]);   // shorter than the virtio header

        device.handleKick(1);

        assertEquals(0, p.txDriver.pollUsed().len());
        assertEquals(0, p.txDriver.pollUsed().len());
        assertNull(p.rxDriver.pollUsed());
        assertEquals(2L, device.counters().get("tx_dropped_malformed"));
        assertEquals(0L, device.counters().get("tx_frames"));
    }

    @Test
    void queuePairsAreIndependent() {
        LoopbackDevice device = device(2, true);
        Pair p0 = pair(0, true);
        Pair p1 = pair(1, true);
        negotiateAndStart(device, p0, p1);
        assertEquals(4, device.maxQueues());
        assertEquals(device.queueGroup(2), device.queueGroup(3));
        assertTrue(device.queueGroup(0) != device.queueGroup(2));
        p0.rxDriver.addChain(new byte[0][], new int[] {2048});
        p1.rxDriver.addChain(new byte[0][], new int[] {2048});
        byte[] frame = frame(80);
        send(p1, frame);

        device.handleKick(3);

        byte[] written = p1.rxDriver.writtenBytes(p1.rxDriver.pollUsed());
        assertArrayEquals(reflected(frame), Arrays.copyOfRange(written, VirtioNet.HDR_LEN, written.length));
        assertNull(p0.rxDriver.pollUsed(), "pair 0 sees nothing of pair 1's traffic");
        assertEquals(0, p0.rxCalls.count());
        device.handleKick(1);                           // pair 0 has nothing to send
        assertNull(p0.txDriver.pollUsed());
        assertEquals(1L, device.counters().get("rx_frames"));
    }

    @Test
    void anRxKickDeliversNothingAndTouchesNoRing() {
        LoopbackDevice device = device(1, true);
        Pair p = pair(0, true);
        negotiateAndStart(device, p);
        p.rxDriver.addChain(new byte[0][], new int[] {2048});
        device.handleKick(0);
        assertNull(p.rxDriver.pollUsed());
        assertEquals(1, p.rx.availableCount());
    }

    @Test
    void rxKicksAreSuppressedForGoodWhileTxKicksStayOn() {
        LoopbackDevice device = device(1, true);
        Pair p = pair(0, true);
        negotiateAndStart(device, p);
        assertEquals(UsedRingLayout.F_NO_NOTIFY, p.rxDriver.usedFlags(), "the driver need not kick RX refills");
        for (int i = 0; i < 3; i++) {
            p.rxDriver.addChain(new byte[0][], new int[] {2048});
            send(p, frame(64));
            device.handleKick(1);
            device.handleKick(0);
            assertEquals(UsedRingLayout.F_NO_NOTIFY, p.rxDriver.usedFlags(), "RX still suppressed after frame " + i);
            assertEquals(0, p.txDriver.usedFlags(), "TX asks for kicks once drained");
        }
        assertEquals(3L, device.counters().get("rx_frames"));
        assertTrue(p.rx.isEnabled() && !p.rx.isBroken());
    }

    @Test
    void manyFramesInOneBurstAreAllReflected() {
        LoopbackDevice device = device(1, true);
        Pair p = pair(0, true);
        negotiateAndStart(device, p);
        for (int round = 0; round < 3; round++) {       // more frames than the ring holds, over rounds
            for (int i = 0; i < RING / 2; i++) {
                p.rxDriver.addChain(new byte[0][], new int[] {1536});
                send(p, frame(64 + i));
            }
            device.handleKick(1);
            for (int i = 0; i < RING / 2; i++) {
                byte[] written = p.rxDriver.writtenBytes(p.rxDriver.pollUsed());
                assertArrayEquals(reflected(frame(64 + i)), Arrays.copyOfRange(written, VirtioNet.HDR_LEN, written.length));
                assertEquals(0, p.txDriver.pollUsed().len());
            }
        }
        assertEquals(3L * RING / 2, device.counters().get("rx_frames"));
    }

    @Test
    void aLongDrainPublishesRxEveryBatchSoTheDriverCanStartOnTheFirstFrames() {
        LoopbackDevice device = device(1, true);
        long features = VirtioFeatures.VERSION_1 | VirtioNet.F_MRG_RXBUF;
        MockSplitQueue rxDriver = MockSplitQueue.create(memory, RING, 0x10000, AREA);
        MockSplitQueue txDriver = MockSplitQueue.create(memory, RING, 0x10000 + AREA, AREA);
        // used->idx as the driver sees it at each RX call: how many frames each publication released
        java.util.List<Integer> publishedAt = new java.util.ArrayList<>();
        SplitQueue rx = rxDriver.deviceQueue(0, features, 0, () -> publishedAt.add(rxDriver.usedIdx()));
        SplitQueue tx = txDriver.deviceQueue(1, features, 0, new CountingNotifier());
        device.ackFeatures(device.features() | VirtioFeatures.VERSION_1);
        device.startQueue(0, rx);
        device.startQueue(1, tx);
        int frames = LoopbackDevice.BATCH + 8;
        for (int i = 0; i < frames; i++) {
            rxDriver.addChain(new byte[0][], new int[] {1536});
            txDriver.addChain(new byte[][] {txHeader(), frame(64 + i)}, new int[0]);
        }
        device.handleKick(1);
        assertEquals(java.util.List.of(LoopbackDevice.BATCH, frames), publishedAt,
                "RX is published after each batch, not once after the whole drain");
        assertEquals((long) frames, device.counters().get("rx_frames"));
        assertEquals(frames, txDriver.usedIdx());
    }

    @Test
    void aDrainStopsAfterItsBudgetWithKicksOffAndTheNextCallFinishes() {
        LoopbackDevice device = device(1, false);
        int ring = 2 * LoopbackDevice.TX_BUDGET;
        long features = VirtioFeatures.VERSION_1;
        MockSplitQueue rxDriver = MockSplitQueue.create(memory, ring, 0x10000, AREA);
        MockSplitQueue txDriver = MockSplitQueue.create(memory, ring, 0x10000 + AREA, AREA);
        SplitQueue rx = rxDriver.deviceQueue(0, features, 0, new CountingNotifier());
        SplitQueue tx = txDriver.deviceQueue(1, features, 0, new CountingNotifier());
        device.ackFeatures(device.features() | features);
        device.startQueue(0, rx);
        device.startQueue(1, tx);
        int frames = LoopbackDevice.TX_BUDGET + 40;
        for (int i = 0; i < frames; i++) {
            rxDriver.addChain(new byte[0][], new int[] {1536});
            txDriver.addChain(new byte[][] {txHeader(), frame(64)}, new int[0]);
        }
        device.handleKick(1);
        assertEquals(LoopbackDevice.TX_BUDGET, txDriver.usedIdx(), "one kick serves one budget");
        assertEquals(LoopbackDevice.TX_BUDGET, rxDriver.usedIdx(), "and publishes what it reflected");
        assertEquals(UsedRingLayout.F_NO_NOTIFY, txDriver.usedFlags(),
                "kicks stay off: the host calls again for the frames left");
        device.handleKick(1); // the host's re-delivery
        assertEquals(frames, txDriver.usedIdx());
        assertEquals(0, txDriver.usedFlags(), "drained: TX asks for kicks again");
        assertEquals((long) frames, device.counters().get("rx_frames"));
    }

    @Test
    void featuresAndConfigSpace() {
        LoopbackDevice one = device(1, true);
        assertEquals(VirtioNet.F_MAC | VirtioNet.F_STATUS | VirtioNet.F_MRG_RXBUF | VirtioFeatures.IN_ORDER,
                one.features(), "IN_ORDER: chains go back in the order they were popped");
        assertEquals(VirtioNet.DEVICE_ID, one.deviceType());
        assertEquals(2, one.maxQueues());
        LoopbackDevice four = new LoopbackDevice("x", new LoopbackConfig(DST, 4, false));
        assertEquals(VirtioNet.F_MAC | VirtioNet.F_STATUS | VirtioNet.F_MQ | VirtioFeatures.IN_ORDER, four.features());
        assertEquals(8, four.maxQueues());

        assertEquals(VirtioNet.CONFIG_SIZE, four.configSize());
        byte[] config = new byte[four.configSize()];
        four.readConfig(0, config);
        assertArrayEquals(new byte[] {0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 1, 0, 4, 0, 0, 0}, config);
        byte[] pairs = new byte[2];
        four.readConfig(VirtioNet.CONFIG_MAX_VQ_PAIRS, pairs);
        assertArrayEquals(new byte[] {4, 0}, pairs);
    }

    @Test
    void theOddQueuesAreTheTransmitQueuesTheHostDiscardsOnWhileDisabled() {
        LoopbackDevice device = device(2, true);
        assertTrue(device.isTransmitQueue(1));
        assertTrue(device.isTransmitQueue(3));
        assertFalse(device.isTransmitQueue(0));
        assertFalse(device.isTransmitQueue(2));
    }

    @Test
    void queuesRestartAfterStopAndReset() {
        LoopbackDevice device = device(1, true);
        Pair p = pair(0, true);
        negotiateAndStart(device, p);
        assertSame(p.rx, device.stopQueue(0));
        assertSame(p.tx, device.stopQueue(1));
        device.reset();

        Pair again = pair(0, true);
        negotiateAndStart(device, again);
        again.rxDriver.addChain(new byte[0][], new int[] {2048});
        send(again, frame(60));
        device.handleKick(1);
        assertEquals(VirtioNet.HDR_LEN + 60, again.rxDriver.pollUsed().len());
    }
}
