package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.Map;
import org.jvhost.engine.instrument.Instrument;
import org.jvhost.engine.instrument.InstrumentedQueue;
import org.jvhost.engine.instrument.SpecRule;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.engine.virtq.SplitQueue;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.testkit.FakeGuestMemory;
import org.jvhost.testkit.MockSplitQueue;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Strict mode on the data path: a scripted driver breaks each ring rule on purpose (avail idx moving
 * back or too far, a device-writable buffer on a transmit queue, a head reused before it came back,
 * kicks while kicks are suppressed) and each is reported exactly once under its rule; a clean driver
 * with traffic and a reconnect is reported zero times; with strict mode off the device gets the bare
 * queue.
 */
@Timeout(30)
class DataPathStrictTest {
    private static final int SIZE = 8;
    private static final long AREA = 0x40000;
    private static final byte[] FRAME = "frame".getBytes(StandardCharsets.US_ASCII);

    @TempDir
    Path dir;
    Host host;
    Path socket;
    Instrument instrument;
    DeviceContext ctx;
    RecordingDevice device;
    ScriptedFrontend fe;
    FakeGuestMemory memory;
    boolean eventIdxAcked;

    @BeforeEach
    void start() throws Exception {
        host = new Host(1);
        socket = dir.resolve("dev.sock");
        ctx = host.newContext("rec@" + socket);
        instrument = host.instrument(ctx);
        instrument.setStrict(true);
        device = new RecordingDevice(4, 0);
        device.serve = true;
        device.transmitQueues = 0b0010; // queue 1
        host.addDevice(ctx, device, socket, Host.Mode.LISTEN);
    }

    @AfterEach
    void stop() throws Exception {
        if (fe != null) {
            fe.close();
        }
        host.close();
    }

    @Test
    void eachDataPathViolationIsReportedOnceUnderItsRule() throws Exception {
        Map<SpecRule, Long> expected = new EnumMap<>(SpecRule.class);
        open(~VirtioFeatures.RING_EVENT_IDX); // the used ring's flags suppress kicks
        MockSplitQueue rx = ring(0);
        MockSplitQueue tx = ring(1);

        for (int i = 0; i < 2; i++) { // twice: reported once
            tx.addChain(new byte[][] {FRAME}, new int[] {64}); // a TX chain with a device-writable buffer
            fe.kick(1);
            assertTrue(fe.waitCall(1, 3000));
        }
        expect(expected, SpecRule.TX_DEVICE_WRITABLE);

        rx.addChain(new byte[0][], new int[] {64});
        rx.addChain(new byte[0][], new int[] {64});
        fe.kick(0);
        assertTrue(fe.waitCall(0, 3000));
        rx.setAvailIdx(1); // two entries were taken; idx goes back to 1
        fe.kick(0);
        expect(expected, SpecRule.AVAIL_IDX_BACKWARDS);

        device.batchAndNoKicks = true; // from here on the device holds a batch and wants no kicks
        MockSplitQueue batch = ring(2);
        int head = batch.addChain(new byte[][] {FRAME}, new int[0]);
        batch.publish(head); // the same head twice, before the device returned it
        fe.kick(2);
        expect(expected, SpecRule.BUFFER_REUSED);
        batch.setAvailIdx(batch.availIdx() + SIZE + 1); // more entries than the ring holds
        fe.kick(2);
        expect(expected, SpecRule.AVAIL_IDX_TOO_FAR);

        ring(3);
        device.await("kick 3"); // the ring's start: the device turns kicks off (VRING_USED_F_NO_NOTIFY)
        for (int kick = 1; kick <= 5; kick++) {
            fe.kick(3);
            device.await("kick 3");
        }
        // the first two eventfd reads after the suppression are forgiven (late kicks), three are extra
        expect(expected, SpecRule.KICK_WHILE_SUPPRESSED);
        assertEquals(3, instrument.extraKicks());
        assertEquals(3L, host.snapshot(ctx).counters().get(Instrument.EXTRA_KICKS));
        assertEquals(5, expected.size());
        assertEquals(5L, host.snapshot(ctx).counters().get(Instrument.VIOLATIONS));
    }

    @Test
    void aCleanDriverWithTrafficAndAReconnectIsNeverReported() throws Exception {
        for (int connection = 0; connection < 2; connection++) {
            open(~0L); // EVENT_IDX too
            MockSplitQueue rx = ring(0);
            MockSplitQueue tx = ring(1);
            for (int i = 0; i < 3 * SIZE; i++) { // wraps both rings several times
                rx.addChain(new byte[0][], new int[] {64});
                kickIfAsked(rx, 0);
                tx.addChain(new byte[][] {FRAME, FRAME}, new int[0]);
                kickIfAsked(tx, 1);
                awaitUsed(rx, i + 1);
                awaitUsed(tx, i + 1);
                rx.pollUsed();
                tx.pollUsed();
            }
            fe.close();
            fe = null;
        }
        assertEquals(0, instrument.violations(), String.valueOf(instrument.counters()));
        assertEquals(0, instrument.extraKicks());
    }

    @Test
    void theDeviceGetsTheBareQueueUnlessStrictOrADataPathFaultIsOn() throws Exception {
        instrument.setStrict(false);
        open(~0L);
        ring(0);
        assertInstanceOf(SplitQueue.class, device.queues[0], "no decorator, no cost");
        fe.close();
        fe = null;
        instrument.setStrict(true);
        open(~0L);
        ring(0);
        assertInstanceOf(InstrumentedQueue.class, device.queues[0]);
    }

    /** Connects, acks the offered features within {@code mask}, shares 1 MiB of memory. */
    private void open(long mask) throws Exception {
        fe = ScriptedFrontend.connect(socket);
        fe.setOwner();
        long features = fe.getFeatures() & mask;
        fe.setFeatures(features);
        eventIdxAcked = (features & VirtioFeatures.RING_EVENT_IDX) != 0;
        fe.setProtocolFeatures(fe.getProtocolFeatures() & (ProtocolFeatures.REPLY_ACK | ProtocolFeatures.MQ));
        ScriptedFrontend.GuestRegion ram = fe.addRegion(0, 4 * AREA);
        fe.setMemTable();
        memory = FakeGuestMemory.builder().region(0, ram.buffer()).build();
    }

    /** Starts ring {@code q} with its driver side in its own quarter of the memory. */
    private MockSplitQueue ring(int q) throws Exception {
        MockSplitQueue driver = MockSplitQueue.create(memory, SIZE, q * AREA, AREA);
        fe.setVringNum(q, SIZE);
        fe.setVringBase(q, 0);
        fe.setVringAddrGpa(q, driver.descGpa(), driver.availGpa(), driver.usedGpa());
        fe.setVringCall(q);
        fe.setVringEnable(q, true);
        fe.setVringKick(q);
        device.await("start " + q);
        return driver;
    }

    /**
     * Kicks queue {@code q} only if the device asks for it after the entry just published, as a driver
     * must (virtio 1.2 §2.7.10.1): avail_event passed with EVENT_IDX, else VRING_USED_F_NO_NOTIFY clear.
     */
    private void kickIfAsked(MockSplitQueue driver, int q) throws Exception {
        java.lang.invoke.VarHandle.fullFence(); // publish, then read the device's wish (the device fences too)
        int now = driver.availIdx();
        boolean kick = eventIdxAcked ? ((now - driver.availEvent() - 1) & 0xffff) < 1 : (driver.usedFlags() & 1) == 0;
        if (kick) {
            fe.kick(q);
        }
    }

    private static void awaitUsed(MockSplitQueue driver, int idx) throws InterruptedException {
        long deadline = System.nanoTime() + 3_000_000_000L;
        while (driver.usedIdx() != (idx & 0xffff) && System.nanoTime() < deadline) {
            Thread.sleep(1);
        }
        assertEquals(idx & 0xffff, driver.usedIdx());
    }

    /** {@code rule} was just broken: within 3 s its count, and only its count, went up by one. */
    private void expect(Map<SpecRule, Long> expected, SpecRule rule) throws InterruptedException {
        expected.merge(rule, 1L, Long::sum);
        long deadline = System.nanoTime() + 3_000_000_000L;
        while (instrument.violations(rule) < expected.get(rule) && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        Thread.sleep(50); // a second report would come now
        for (SpecRule r : SpecRule.values()) {
            assertEquals(expected.getOrDefault(r, 0L), instrument.violations(r), "after " + rule + ": " + r);
        }
    }
}
