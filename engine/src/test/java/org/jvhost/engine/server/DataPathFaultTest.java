package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.jvhost.engine.instrument.FaultPlan;
import org.jvhost.engine.instrument.Instrument;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.spi.DeviceContext;
import org.jvhost.testkit.FakeGuestMemory;
import org.jvhost.testkit.MockSplitQueue;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Data-path faults against a scripted driver: a stalled transmit queue returns nothing for its stall and
 * then everything without a new kick; the connection is dropped after N frames and the next one is
 * served; each fault is counted. (Random mode's
 * pick: DataPathFaultsTest in engine.)
 */
@Timeout(30)
class DataPathFaultTest {
    private static final int SIZE = 8;
    private static final long AREA = 0x40000;
    private static final byte[] FRAME = "frame".getBytes(StandardCharsets.US_ASCII);

    @TempDir
    Path dir;
    Host host;
    Path socket;
    Instrument instrument;
    RecordingDevice device;
    ScriptedFrontend fe;
    FakeGuestMemory memory;

    @BeforeEach
    void start() throws Exception {
        host = new Host(1);
        socket = dir.resolve("dev.sock");
        DeviceContext ctx = host.newContext("rec@" + socket);
        instrument = host.instrument(ctx);
        device = new RecordingDevice(2, 0);
        device.serve = true;
        device.transmitQueues = 0b0010;
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
    void aStalledTransmitQueueReturnsNothingForItsStallThenGoesOnWithoutAKick() throws Exception {
        instrument.setFaults(new FaultPlan(0, 0, java.util.Set.of(), 0, 0, null, 0, null, new FaultPlan.Stall(2, 600)));
        open();
        MockSplitQueue tx = ring(1);
        for (int i = 1; i <= 2; i++) {
            tx.addChain(new byte[][] {FRAME}, new int[0]);
            fe.kick(1);
            awaitUsed(tx, i, 3000);
        }
        assertEquals(1, instrument.faultsInjected(), "the stall began after chain 2");
        long stalledAt = System.nanoTime();
        tx.addChain(new byte[][] {FRAME}, new int[0]);
        tx.addChain(new byte[][] {FRAME}, new int[0]);
        fe.kick(1);
        Thread.sleep(300);
        assertEquals(2, tx.usedIdx(), "nothing returned during the stall");
        awaitUsed(tx, 4, 3000); // no kick: the stall's end brings the ring back
        long ms = (System.nanoTime() - stalledAt) / 1_000_000;
        assertTrue(ms >= 550, "returned after " + ms + " ms");
        ring(0); // other rings are not stalled
    }

    @Test
    void theFirstConnectionIsDroppedAfterNFramesAndTheNextIsServed() throws Exception {
        instrument.setFaults(new FaultPlan(0, 0, java.util.Set.of(), 0, 0, null, 3, null, null));
        open();
        MockSplitQueue tx = ring(1);
        for (int i = 1; i <= 3; i++) {
            tx.addChain(new byte[][] {FRAME}, new int[0]);
            fe.kick(1);
        }
        assertTrue(fe.isClosedByPeer(3000), "dropped after frame 3");
        assertEquals(1, instrument.faultsInjected());
        fe.close();
        open();
        tx = ring(1);
        for (int i = 1; i <= 5; i++) {
            tx.addChain(new byte[][] {FRAME}, new int[0]);
            fe.kick(1);
            awaitUsed(tx, i, 3000);
        }
        assertEquals(1, instrument.faultsInjected(), "the second connection is left alone");
    }

    /**
     * The drop comes from the worker, mid-batch: the connection closes only once the ring has stopped, so
     * the used index the front-end finds when it sees the end is final. QEMU 7.2 takes it for where the
     * ring stopped; a used entry published after the close was handed back twice on the next connection.
     */
    @Test
    void theUsedIndexIsFinalWhenTheFrontEndSeesTheDrop() throws Exception {
        instrument.setFaults(new FaultPlan(0, 0, java.util.Set.of(), 0, 0, null, 1, null, null));
        device.batchAndNoKicks = true;
        device.publishDelayMs = 300; // the drop is posted at the batch's first used entry, its index 300 ms later
        open();
        MockSplitQueue tx = ring(1);
        for (int i = 0; i < 3; i++) {
            tx.addChain(new byte[][] {FRAME}, new int[0]);
        }
        fe.kick(1);
        assertTrue(fe.isClosedByPeer(3000), "dropped after frame 1");
        int usedAtClose = tx.usedIdx();
        Thread.sleep(400);
        assertEquals(3, usedAtClose, "the whole batch was published before the socket closed");
        assertEquals(3, tx.usedIdx(), "nothing written after the socket closed");
    }

    private void open() throws Exception {
        fe = ScriptedFrontend.connect(socket);
        fe.setOwner();
        fe.setFeatures(fe.getFeatures());
        fe.setProtocolFeatures(fe.getProtocolFeatures() & (ProtocolFeatures.REPLY_ACK | ProtocolFeatures.MQ));
        ScriptedFrontend.GuestRegion ram = fe.addRegion(0, 2 * AREA);
        fe.setMemTable();
        memory = FakeGuestMemory.builder().region(0, ram.buffer()).build();
    }

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

    private static void awaitUsed(MockSplitQueue driver, int idx, long ms) throws InterruptedException {
        long deadline = System.nanoTime() + ms * 1_000_000L;
        while (driver.usedIdx() != idx && System.nanoTime() < deadline) {
            Thread.sleep(1);
        }
        assertEquals(idx, driver.usedIdx());
    }
}
