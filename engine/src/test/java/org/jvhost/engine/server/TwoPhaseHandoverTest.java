package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
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
 * A hot upgrade between two hosts in one JVM, over a real handover socket, with a scripted front-end on
 * the old host's device: the new host creates its device and sets the connection up while the old ring
 * still serves (first phase), the ring pauses only when the new host asks for the second phase, and the
 * new device then serves the same connection from where the old one stopped. A successor that gives up
 * after the first phase leaves the old host serving.
 */
@Timeout(30)
class TwoPhaseHandoverTest {
    private static final int SIZE = 8;
    private static final long AREA = 0x40000;
    private static final byte[] FRAME = "frame".getBytes(StandardCharsets.US_ASCII);

    @TempDir
    Path dir;
    Host oldHost;
    Host newHost;
    Path socket;
    RecordingDevice oldDevice;
    ScriptedFrontend fe;
    MockSplitQueue tx;
    Handover handover;
    final CompletableFuture<Long> handedOver = new CompletableFuture<>();
    final List<AutoCloseable> toClose = new ArrayList<>();

    @BeforeEach
    void start() throws Exception {
        oldHost = new Host(1);
        socket = dir.resolve("dev.sock");
        DeviceContext ctx = oldHost.newContext("rec@" + socket);
        oldDevice = device();
        oldHost.addDevice(ctx, oldDevice, socket, Host.Mode.LISTEN);
        handover = Handover.listen(oldHost, handoverSocket(), Map::of, handedOver::complete);
        fe = ScriptedFrontend.connect(socket);
        fe.setOwner();
        fe.setFeatures(fe.getFeatures());
        fe.setProtocolFeatures(fe.getProtocolFeatures() & (ProtocolFeatures.REPLY_ACK | ProtocolFeatures.MQ));
        ScriptedFrontend.GuestRegion ram = fe.addRegion(0, 2 * AREA);
        fe.setMemTable();
        FakeGuestMemory memory = FakeGuestMemory.builder().region(0, ram.buffer()).build();
        tx = MockSplitQueue.create(memory, SIZE, AREA, AREA);
        fe.setVringNum(1, SIZE);
        fe.setVringBase(1, 0);
        fe.setVringAddrGpa(1, tx.descGpa(), tx.availGpa(), tx.usedGpa());
        fe.setVringCall(1);
        fe.setVringEnable(1, true);
        fe.setVringKick(1);
        oldDevice.await("start 1");
        send(1, 3);
    }

    private static RecordingDevice device() {
        RecordingDevice d = new RecordingDevice(2, 0);
        d.serve = true;
        d.transmitQueues = 0b0010;
        d.upgradable = true;
        return d;
    }

    private Path handoverSocket() {
        return HandoverLayout.socketFor(dir.resolve("control.sock"));
    }

    @AfterEach
    void stop() throws Exception {
        for (AutoCloseable c : toClose) {
            c.close();
        }
        fe.close();
        handover.close();
        if (newHost != null) {
            newHost.close();
        }
        oldHost.close();
    }

    @Test
    void theNewDeviceIsSetUpWhileTheOldRingRunsAndTakesOverWhereItStopped() throws Exception {
        newHost = new Host(1);
        Takeover t = Takeover.receive(handoverSocket(), 5000);
        toClose.add(t);
        newHost.adopt(t);
        RecordingDevice newDevice = device();
        newHost.addDevice(newHost.newContext("rec@" + socket), newDevice, socket, Host.Mode.LISTEN);
        assertTrue(newDevice.events.stream().anyMatch(e -> e.startsWith("ack ")),
                "the connection's features are acknowledged in the first phase: " + newDevice.events);

        send(4, 5); // the old ring still serves: the first phase did not pause it
        assertFalse(oldDevice.events.contains("pause 1"), "the old ring paused before the second phase");

        newHost.completeTakeover();
        oldDevice.await("pause 1"); // a pause for the handover (VhostUserDevice#pauseQueue), not a stop
        assertFalse(oldDevice.events.contains("stop 1"), "the old ring was stopped, not paused: " + oldDevice.events);
        newDevice.await("restore 1");
        assertFalse(newDevice.events.contains("start 1"), "the new ring started before the acknowledgement");
        t.acknowledge();
        newHost.startAdopted().get(5, TimeUnit.SECONDS);
        assertFalse(handedOver.isDone(), "the old host left before the new one closed the link (its rings run)");
        t.close();
        assertTrue(handedOver.get(5, TimeUnit.SECONDS) == ProcessHandle.current().pid(), "the old host was told");
        newDevice.await("start 1");

        send(6, 8); // the same connection, the old ring paused: served by the new device from chain 6 on
        newDevice.await("kick 1");
        assertTrue(fe.getFeatures() != 0, "the new host answers on the front-end's connection");
    }

    @Test
    void aSuccessorThatGivesUpAfterTheFirstPhaseLeavesTheOldHostServing() throws Exception {
        newHost = new Host(1);
        Takeover t = Takeover.receive(handoverSocket(), 5000);
        send(4, 5); // frozen: nothing read from the connection, but the ring serves
        t.close(); // before READY: the old host never paused its rings
        assertTrue(fe.getFeatures() != 0, "the old host reads its connection again");
        send(6, 7);
        assertFalse(oldDevice.events.contains("pause 1"), "the old ring was paused");
        assertFalse(handedOver.isDone(), "handed over to a successor that gave up");
    }

    /** Chains {@code from..to} on the transmit ring, each kicked and awaited in the used ring. */
    private void send(int from, int to) throws Exception {
        for (int i = from; i <= to; i++) {
            tx.addChain(new byte[][] {FRAME}, new int[0]);
            fe.kick(1);
            long deadline = System.nanoTime() + 3_000_000_000L;
            while (tx.usedIdx() != i && System.nanoTime() < deadline) {
                Thread.sleep(1);
            }
            assertEquals(i, tx.usedIdx(), "chain " + i + " served");
        }
    }
}
