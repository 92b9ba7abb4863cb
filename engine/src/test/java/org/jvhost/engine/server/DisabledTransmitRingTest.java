package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.testkit.FakeGuestMemory;
import org.jvhost.testkit.MockSplitQueue;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * vhost-user "Ring states": on a started but disabled ring a network back-end "must not supply any new RX
 * packets, but must process and discard any TX packets". Queue 1 of the recording device is a transmit
 * queue, queue 0 is not; both run over a real socket and memfd guest memory.
 */
@Timeout(30)
class DisabledTransmitRingTest {
    private static final long RAM = 4 << 20;
    private static final long AREA = 1 << 20;
    private static final int RX = 0;
    private static final int TX = 1;

    @TempDir
    Path dir;
    Host host;
    RecordingDevice device;
    ScriptedFrontend fe;
    ScriptedFrontend.GuestRegion ram;
    final MockSplitQueue[] drivers = new MockSplitQueue[2];
    /** Used entries the driver has consumed per queue, for used_event (EVENT_IDX) as a Linux driver sets it. */
    final int[] consumed = new int[2];

    @BeforeEach
    void connect() throws Exception {
        host = new Host(2);
        device = new RecordingDevice(2, 0);
        device.serve = true;
        device.transmitQueues = 1 << TX;
        Path socket = dir.resolve("tx.sock");
        host.addDevice(host.newContext("tx@" + socket), device, socket, Host.Mode.LISTEN);
        fe = ScriptedFrontend.connect(socket);
        fe.setOwner();
        fe.setFeatures(fe.getFeatures());
        fe.setProtocolFeatures(ProtocolFeatures.REPLY_ACK | ProtocolFeatures.MQ);
        ram = fe.addRegion(0, RAM);
        fe.setMemTable();
    }

    @AfterEach
    void close() throws Exception {
        fe.close();
        host.close();
    }

    /** Lays out queue {@code q}'s rings in its own MiB of guest RAM, configures, enables and starts it. */
    private void startEnabled(int q, int size) throws Exception {
        FakeGuestMemory view = FakeGuestMemory.builder().region(0, ram.buffer()).build();
        MockSplitQueue driver = MockSplitQueue.create(view, size, 0x1000 + q * AREA, AREA - 0x1000);
        drivers[q] = driver;
        fe.setVringNum(q, size);
        fe.setVringBase(q, 0);
        fe.setVringAddrGpa(q, driver.descGpa(), driver.availGpa(), driver.usedGpa());
        fe.setVringCall(q);
        fe.setVringEnable(q, true);
        fe.setVringKick(q);
        device.await("start " + q);
    }

    private int ping(int q) {
        return drivers[q].addChain(new byte[][] {"ping".getBytes(StandardCharsets.US_ASCII)}, new int[] {64});
    }

    /** Waits for the call eventfd and returns the next used element, re-arming used_event past it. */
    private MockSplitQueue.UsedElement awaitUsed(int q) throws Exception {
        assertTrue(fe.waitCall(q, 3000), "queue " + q + " signalled its call eventfd");
        MockSplitQueue.UsedElement e = drivers[q].pollUsed();
        assertNotNull(e, "queue " + q + ": a used element");
        drivers[q].setUsedEvent(++consumed[q]);
        return e;
    }

    private void assertPong(int q, int head) throws Exception {
        MockSplitQueue.UsedElement e = awaitUsed(q);
        assertEquals(head, e.id());
        assertArrayEquals("pong".getBytes(StandardCharsets.US_ASCII), drivers[q].writtenBytes(e));
    }

    /** Polls the used ring until it holds {@code count} entries or 5 s pass. */
    private void awaitUsedIdx(int q, int count) throws InterruptedException {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (drivers[q].usedIdx() != count && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertEquals(count, drivers[q].usedIdx(), "queue " + q + " used index");
    }

    /** The events the device has recorded so far, without waiting. */
    private List<String> drainEvents() {
        List<String> seen = new ArrayList<>();
        device.events.drainTo(seen);
        return seen;
    }

    @Test
    void txChainsSentWhileDisabledComeBackUnsentAndNeverReachTheDevice() throws Exception {
        startEnabled(TX, 8);
        assertPong(TX, pingAndKick(TX));
        fe.setVringEnable(TX, false);
        device.await("stop " + TX);

        int[] heads = {ping(TX), ping(TX), ping(TX)};
        fe.kick(TX);
        awaitUsedIdx(TX, 4);
        assertTrue(fe.waitCall(TX, 3000), "the driver is signalled for the discarded chains");
        for (int i = 0; i < heads.length; i++) {
            MockSplitQueue.UsedElement e = drivers[TX].usedElement(1 + i);
            assertEquals(heads[i], e.id(), "used entry " + (1 + i));
            assertEquals(0, e.len(), "a discarded TX chain comes back with nothing written");
        }
        for (int i = 0; i < heads.length; i++) {
            drivers[TX].pollUsed();
        }
        consumed[TX] = 4;
        drivers[TX].setUsedEvent(consumed[TX]);
        assertEquals(List.of(), drainEvents(), "the device saw something of a disabled ring");

        fe.setVringEnable(TX, true);
        device.await("start " + TX);
        device.await("kick " + TX); // the replayed kick finds nothing: the discarded chains are gone
        assertEquals(4, drivers[TX].usedIdx(), "nothing of what was sent while disabled is served after");
        assertEquals(4, device.queues[TX].nextAvail());
        assertPong(TX, pingAndKick(TX));
    }

    @Test
    void chainsPendingWhenTheTxRingIsDisabledAreDiscardedAtOnce() throws Exception {
        device.serve = false; // the device leaves what the driver sends on the ring
        startEnabled(TX, 8);
        int head = pingAndKick(TX);
        device.await("kick " + TX);
        assertEquals(0, drivers[TX].usedIdx());

        fe.setVringEnable(TX, false); // no kick follows: the disable itself must return the chain
        MockSplitQueue.UsedElement e = awaitUsed(TX);
        assertEquals(head, e.id());
        assertEquals(0, e.len());
    }

    /**
     * DPDK's virtio_user enables a queue pair without asking for a reply and sends at once: its kick can
     * reach the worker before the control loop has read the enable written before it. Those chains are
     * served, not discarded: a discard waits 250 ms (Ring.DISCARD_GRACE_MS) for an enable.
     */
    @Test
    void aKickThatOvertakesItsEnableIsServedNotDiscarded() throws Exception {
        FakeGuestMemory view = FakeGuestMemory.builder().region(0, ram.buffer()).build();
        MockSplitQueue driver = MockSplitQueue.create(view, 8, 0x1000 + TX * AREA, AREA - 0x1000);
        drivers[TX] = driver;
        fe.setVringNum(TX, 8);
        fe.setVringBase(TX, 0);
        fe.setVringAddrGpa(TX, driver.descGpa(), driver.availGpa(), driver.usedGpa());
        fe.setVringCall(TX);
        fe.setVringKick(TX); // started, and disabled: protocol features are negotiated
        int head = pingAndKick(TX);
        Thread.sleep(50); // the worker has seen the kick; the enable is "late"
        assertEquals(0, drivers[TX].usedIdx(), "a kick on a disabled ring was discarded before its grace");
        fe.setVringEnable(TX, true);
        device.await("start " + TX);
        assertPong(TX, head);
    }

    @Test
    void aDisabledRxRingKeepsItsBuffersForTheDevice() throws Exception {
        startEnabled(RX, 8);
        startEnabled(TX, 8);
        fe.setVringEnable(RX, false);
        fe.setVringEnable(TX, false);
        device.await("stop " + TX);
        drainEvents();

        int rxHead = pingAndKick(RX);
        pingAndKick(TX);
        awaitUsedIdx(TX, 1); // the TX ring was processed, so the RX kick has been seen too
        assertFalse(fe.waitCall(RX, 200), "a disabled RX ring was processed");
        assertEquals(0, drivers[RX].usedIdx(), "RX buffers are not supplied while disabled");
        assertEquals(List.of(), drainEvents(), "the device saw something of a disabled ring");

        fe.setVringEnable(RX, true);
        device.await("start " + RX);
        assertPong(RX, rxHead);
    }

    @Test
    void moreChainsThanTheBudgetAreDiscardedInTurnsWithoutAnotherKick() throws Exception {
        int size = 512;
        int sent = 300; // more than Ring.DISCARD_BUDGET (256)
        startEnabled(TX, size);
        fe.setVringEnable(TX, false);
        device.await("stop " + TX);
        for (int i = 0; i < sent; i++) {
            ping(TX);
        }
        fe.kick(TX);
        awaitUsedIdx(TX, sent);
        for (int i = 0; i < sent; i++) {
            assertEquals(0, drivers[TX].usedElement(i).len(), "used entry " + i);
        }
    }

    @Test
    void stoppingAnEnabledTxRingKeepsItsPendingChains() throws Exception {
        device.serve = false;
        startEnabled(TX, 8);
        pingAndKick(TX);
        device.await("kick " + TX);
        assertEquals(0, fe.getVringBase(TX), "GET_VRING_BASE reports the chain as still available");
        assertEquals(0, drivers[TX].usedIdx(), "stopping the ring discarded a chain");
    }

    private int pingAndKick(int q) throws Exception {
        int head = ping(q);
        fe.kick(q);
        return head;
    }
}
