package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.MessageHeader;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.engine.protocol.U64Layout;
import org.jvhost.engine.sys.LinuxSys;
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

/** Rings over a real socket and memfd guest memory: start, enable, kicks, stop, restart, data path. */
@Timeout(30)
class RingLifecycleTest {
    private static final int SIZE = 8;
    private static final long RAM = 1 << 20;

    @TempDir
    Path dir;
    Host host;
    RecordingDevice device;
    DeviceContext ctx;
    Path socket;
    ScriptedFrontend fe;
    MockSplitQueue driver;
    int consumed;

    @BeforeEach
    void start() throws Exception {
        host = new Host(2);
        device = new RecordingDevice(2, 0);
        device.serve = true;
        socket = dir.resolve("ring.sock");
        ctx = host.newContext("ring@" + socket);
        host.addDevice(ctx, device, socket, Host.Mode.LISTEN);
        fe = ScriptedFrontend.connect(socket);
        fe.setOwner();
        fe.setFeatures(fe.getFeatures());
        fe.setProtocolFeatures(ProtocolFeatures.REPLY_ACK | ProtocolFeatures.MQ);
        ScriptedFrontend.GuestRegion ram = fe.addRegion(0, RAM);
        fe.setMemTable();
        FakeGuestMemory view = FakeGuestMemory.builder().region(0, ram.buffer()).build();
        driver = MockSplitQueue.create(view, SIZE, 0x1000, RAM - 0x1000);
        configure(0);
        device.events.clear();
    }

    private void configure(int q) throws Exception {
        fe.setVringNum(q, SIZE);
        fe.setVringBase(q, 0);
        fe.setVringAddrGpa(q, driver.descGpa(), driver.availGpa(), driver.usedGpa());
        fe.setVringCall(q);
    }

    @AfterEach
    void stop() throws Exception {
        fe.close();
        host.close();
    }

    private int ping() {
        return driver.addChain(new byte[][] {"ping".getBytes(StandardCharsets.US_ASCII)}, new int[] {64});
    }

    private void assertPong(int head) throws Exception {
        assertTrue(fe.waitCall(0, 3000), () -> "the device signalled the call eventfd; device saw " + device.events
                + ", queue " + (device.queues[0] == null ? "none" : "avail " + device.queues[0].availableCount()
                + " broken " + device.queues[0].brokenReason() + " nextAvail " + device.queues[0].nextAvail()));
        MockSplitQueue.UsedElement e = driver.pollUsed();
        assertNotNull(e, "a used element");
        assertEquals(head, e.id());
        assertArrayEquals("pong".getBytes(StandardCharsets.US_ASCII), driver.writtenBytes(e));
        // as a Linux driver re-enabling callbacks: wake me when the used index passes what I consumed
        driver.setUsedEvent(++consumed);
    }

    @Test
    void ringStartsOnlyWhenEnabledAndAnEarlyKickIsNotLost() throws Exception {
        fe.setVringKick(0); // started, but disabled: protocol features were negotiated
        int head = ping();
        fe.kick(0);
        assertNull(device.events.poll(300, TimeUnit.MILLISECONDS) , "a disabled ring reaches the device");
        assertFalse(fe.waitCall(0, 50));
        fe.setVringEnable(0, true);
        device.await("start 0");
        device.await("kick 0"); // the replayed kick serves the buffer added before enable
        assertPong(head);
    }

    @Test
    void kicksReachTheDeviceAndDisableTakesTheQueueBack() throws Exception {
        fe.setVringEnable(0, true);
        fe.setVringKick(0);
        device.await("start 0");
        for (int i = 0; i < 3; i++) {
            int head = ping();
            fe.kick(0);
            assertPong(head);
        }
        fe.setVringEnable(0, false);
        device.await("stop 0");
        int head = ping();
        fe.kick(0);
        assertFalse(fe.waitCall(0, 300), "a disabled ring is served");
        fe.setVringEnable(0, true);
        device.await("start 0");
        assertPong(head);
    }

    @Test
    void aKickFdEpollCannotWatchIsRefusedAndTheRingKeepsItsOldOne() throws Exception {
        fe.setVringEnable(0, true);
        fe.setVringKick(0);
        device.await("start 0");
        assertPong(pingAndKick());
        // epoll refuses regular files (EPERM); a memfd is one
        int memfd = LinuxSys.memfdCreate("not-an-eventfd", LinuxSys.MFD_CLOEXEC);
        try {
            int before = ProtocolLifecycleTest.openFds();
            for (int i = 0; i < 2000; i++) {
                fe.send(FrontendRequest.SET_VRING_KICK.code(), MessageHeader.VERSION | MessageHeader.NEED_REPLY,
                        U64Layout.of(0), memfd);
                assertEquals(1, fe.readReply().u64(), "SET_VRING_KICK with a memfd is refused");
            }
            int after = ProtocolLifecycleTest.openFds();
            assertTrue(after <= before + 2, "open fds grew from " + before + " to " + after
                    + " over 2000 refused kick fd switches");
        } finally {
            LinuxSys.closeQuietly(memfd);
        }
        // still started, still watching the kick eventfd it had
        assertPong(pingAndKick());
    }

    @Test
    void getVringBaseStopsTheRingAndReturnsNextAvail() throws Exception {
        fe.setVringEnable(0, true);
        fe.setVringKick(0);
        assertPong(pingAndKick());
        assertPong(pingAndKick());
        assertEquals(2, fe.getVringBase(0));
        device.await("stop 0");
        // stopped: parameters may change again, kicks no longer reach the device
        fe.setVringNum(0, SIZE);
        int head = ping();
        // a new kick fd restarts the ring where it stopped, and the pending buffer is served
        fe.setVringKick(0);
        device.await("start 0");
        assertPong(head);
        assertEquals(3, fe.getVringBase(0));
    }

    @Test
    void aHostileAvailIndexSignalsTheErrorEventfd() throws Exception {
        fe.setVringErr(0);
        fe.setVringEnable(0, true);
        fe.setVringKick(0);
        device.await("start 0");
        assertFalse(fe.waitErr(0, 50), "error signalled before anything went wrong");
        driver.setAvailIdx(SIZE + 1); // more entries than the ring holds: the spec's avail-idx rule is broken
        fe.kick(0);
        assertTrue(fe.waitErr(0, 3000), "the back-end signals SET_VRING_ERR's eventfd when the ring breaks");
        assertTrue(device.queues[0].isBroken());
        assertTrue(device.queues[0].brokenReason().contains("avail index"), device.queues[0].brokenReason());
    }

    @Test
    void runningRingRefusesParameterChanges() throws Exception {
        fe.setVringEnable(0, true);
        fe.setVringKick(0);
        device.await("start 0");
        assertThrows(ScriptedFrontend.RefusedException.class, () -> fe.setVringNum(0, 16));
        assertThrows(ScriptedFrontend.RefusedException.class, () -> fe.setVringNum(1, 3), "not a power of two");
        assertThrows(ScriptedFrontend.RefusedException.class, () -> fe.setVringEnable(7, true), "no queue 7");
        assertPong(pingAndKick());
    }

    @Test
    void ringOutsideGuestMemoryIsRefused() throws Exception {
        fe.setVringAddr(1, 0x10, 0x20, 0x30); // user addresses in no region
        fe.setVringNum(1, SIZE);
        ScriptedFrontend.RefusedException e = assertThrows(ScriptedFrontend.RefusedException.class,
                () -> fe.setVringKick(1));
        assertEquals(1, e.ack());
        fe.setVringEnable(0, true);
        fe.setVringKick(0);
        assertPong(pingAndKick());
    }

    @Test
    void withoutProtocolFeaturesSetFeaturesEnablesRings() throws Exception {
        fe.close();
        device.await("reset");
        fe = ScriptedFrontend.connect(socket);
        fe.setFeatures(VirtioFeatures.VERSION_1);
        ScriptedFrontend.GuestRegion ram = fe.addRegion(0, RAM);
        fe.setMemTable();
        driver = MockSplitQueue.create(FakeGuestMemory.builder().region(0, ram.buffer()).build(), SIZE, 0x1000,
                RAM - 0x1000);
        configure(0);
        fe.setVringKick(0);
        device.await("start 0");
        assertPong(pingAndKick());
    }

    @Test
    void aThrowingDeviceFailsAloneAndRecoversAfterReconnect() throws Exception {
        RecordingDevice other = new RecordingDevice(1, 0);
        other.serve = true;
        Path otherSocket = dir.resolve("other.sock");
        DeviceContext otherCtx = host.newContext("other");
        host.addDevice(otherCtx, other, otherSocket, Host.Mode.LISTEN);
        try (ScriptedFrontend fe2 = ScriptedFrontend.connect(otherSocket)) {
            fe2.setFeatures(fe2.getFeatures());
            fe2.setProtocolFeatures(ProtocolFeatures.REPLY_ACK);
            ScriptedFrontend.GuestRegion ram2 = fe2.addRegion(0, RAM);
            fe2.setMemTable();
            MockSplitQueue driver2 = MockSplitQueue.create(FakeGuestMemory.builder().region(0, ram2.buffer()).build(),
                    SIZE, 0x1000, RAM - 0x1000);
            fe2.setVringNum(0, SIZE);
            fe2.setVringAddrGpa(0, driver2.descGpa(), driver2.availGpa(), driver2.usedGpa());
            fe2.setVringCall(0);
            fe2.setVringEnable(0, true);
            fe2.setVringKick(0);

            device.throwOnKick = true;
            fe.setVringEnable(0, true);
            fe.setVringKick(0);
            device.await("kick 0");
            long deadline = System.nanoTime() + 3_000_000_000L;
            while (!host.status(ctx).failed() && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertTrue(host.status(ctx).failed(), "the throwing device is marked failed");
            ping();
            fe.kick(0);
            assertNull(pollKick(device, 300), "a failed device still gets kicks");

            int head = driver2.addChain(new byte[][] {"x".getBytes(StandardCharsets.US_ASCII)}, new int[] {16});
            fe2.kick(0);
            assertTrue(fe2.waitCall(0, 3000), "the other device keeps serving");
            assertEquals(head, driver2.pollUsed().id());
            assertFalse(host.status(otherCtx).failed());
        }
        fe.close();
        device.await("reset");
        long deadline = System.nanoTime() + 3_000_000_000L;
        while (host.status(ctx).failed() && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertFalse(host.status(ctx).failed(), "a reset clears the error state");
    }

    private static String pollKick(RecordingDevice d, long ms) throws InterruptedException {
        long deadline = System.nanoTime() + ms * 1_000_000L;
        String e;
        while ((e = d.events.poll(Math.max(1, (deadline - System.nanoTime()) / 1_000_000L), TimeUnit.MILLISECONDS)) != null) {
            if (e.startsWith("kick")) {
                return e;
            }
        }
        return null;
    }

    private int pingAndKick() throws Exception {
        int head = ping();
        fe.kick(0);
        return head;
    }
}
