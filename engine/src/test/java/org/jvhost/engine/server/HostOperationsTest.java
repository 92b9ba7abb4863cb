package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.BooleanSupplier;
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

/** What the control API relies on: a device's snapshot (state and counters) and removing one device at run time. */
@Timeout(30)
class HostOperationsTest {
    private static final int SIZE = 8;
    private static final long RAM = 1 << 20;

    @TempDir
    Path dir;
    Host host;

    /** One served device with a connected, configured front-end whose queue 0 is started. */
    private final class Served implements AutoCloseable {
        final RecordingDevice device = new RecordingDevice(2, 0);
        final Path socket;
        final DeviceContext ctx;
        final ScriptedFrontend fe;
        final MockSplitQueue driver;
        private int consumed;

        Served(String name) throws Exception {
            device.serve = true;
            socket = dir.resolve(name + ".sock");
            ctx = host.newContext(name);
            host.addDevice(ctx, device, socket, Host.Mode.LISTEN);
            fe = ScriptedFrontend.connect(socket);
            fe.setOwner();
            fe.setFeatures(fe.getFeatures());
            fe.setProtocolFeatures(ProtocolFeatures.REPLY_ACK);
            ScriptedFrontend.GuestRegion ram = fe.addRegion(0, RAM);
            fe.setMemTable();
            driver = MockSplitQueue.create(FakeGuestMemory.builder().region(0, ram.buffer()).build(), SIZE, 0x1000,
                    RAM - 0x1000);
            fe.setVringNum(0, SIZE);
            fe.setVringBase(0, 0);
            fe.setVringAddrGpa(0, driver.descGpa(), driver.availGpa(), driver.usedGpa());
            fe.setVringCall(0);
            fe.setVringErr(0);
            fe.setVringEnable(0, true);
            fe.setVringKick(0);
            device.await("start 0");
        }

        void pingPong() throws Exception {
            int head = driver.addChain(new byte[][] {"ping".getBytes(StandardCharsets.US_ASCII)}, new int[] {64});
            fe.kick(0);
            assertTrue(fe.waitCall(0, 3000), "the device answers");
            assertEquals(head, driver.pollUsed().id());
            driver.setUsedEvent(++consumed);
        }

        @Override
        public void close() throws Exception {
            fe.close();
        }
    }

    @BeforeEach
    void start() {
        host = new Host(2);
    }

    @AfterEach
    void stop() {
        host.close();
    }

    @Test
    void snapshotCountsKicksCallsAndABrokenQueue() throws Exception {
        Served a = new Served("a");
        try (a) {
            for (int i = 0; i < 3; i++) {
                a.pingPong();
            }
            DeviceSnapshot s = host.snapshot(a.ctx);
            assertEquals("a", s.name());
            assertTrue(s.connected());
            assertEquals(1, s.sessions());
            assertNotEquals(0, s.negotiatedFeatures() & (1L << 5), "the device's feature bit was negotiated");
            assertEquals(2, s.queues().size());
            DeviceSnapshot.QueueSnapshot q0 = s.queues().get(0);
            assertTrue(q0.active());
            assertTrue(q0.kicks() >= 3, "kicks " + q0.kicks());
            assertTrue(q0.calls() >= 3, "calls " + q0.calls());
            assertEquals(0, q0.errors());
            assertFalse(s.queues().get(1).active(), "queue 1 was never started");
            assertEquals(0, s.queues().get(1).kicks());

            a.driver.setAvailIdx(3 + SIZE + 1); // 3 consumed, then more entries than the ring holds: the queue breaks
            a.fe.kick(0);
            assertTrue(a.fe.waitErr(0, 3000));
            await(() -> host.snapshot(a.ctx).queues().get(0).errors() == 1, "the break is counted once");
        }
        await(() -> !host.snapshot(a.ctx).connected(), "the front-end's close is seen");
        DeviceSnapshot after = host.snapshot(a.ctx);
        assertEquals(0, after.negotiatedFeatures(), "no connection, no features");
        assertTrue(after.queues().get(0).kicks() >= 3, "counters outlive the connection");
    }

    @Test
    void removeDeviceClosesItsConnectionAndSocketAndLeavesOthersServing() throws Exception {
        try (Served a = new Served("a"); Served b = new Served("b")) {
            a.pingPong();
            b.pingPong();
            assertTrue(host.removeDevice(a.ctx));
            assertTrue(a.fe.isClosedByPeer(3000), "the removed device's front-end is disconnected");
            assertFalse(Files.exists(a.socket), "the removed device's socket file is gone");
            a.device.await("close");
            assertNull(host.snapshot(a.ctx));
            assertFalse(host.removeDevice(a.ctx), "removing twice");
            b.pingPong();
            assertTrue(host.snapshot(b.ctx).connected());
            assertTrue(Files.exists(b.socket));
        }
    }

    private static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + 3_000_000_000L;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError(what);
            }
            Thread.sleep(10);
        }
    }
}
