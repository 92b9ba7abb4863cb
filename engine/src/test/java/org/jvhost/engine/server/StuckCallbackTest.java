package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.MessageHeader;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.engine.protocol.VringStateLayout;
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
 * A device callback that hangs on its worker holds up its own connection only: the control loop it
 * shares with other devices keeps answering them, the stuck request is answered once the callback
 * returns, and a front-end that leaves meanwhile gets its memory unmapped when the worker lets go.
 */
@Timeout(60)
class StuckCallbackTest {
    private static final int SIZE = 8;
    private static final long RAM = 1 << 20;
    /** A control round trip on an idle loop takes well under a millisecond; this is generous for CI. */
    private static final long PROMPT_MS = 500;

    @TempDir
    Path dir;
    Host host;
    RecordingDevice stuck;
    DeviceContext stuckCtx;
    RecordingDevice healthy;
    ScriptedFrontend stuckFe;
    ScriptedFrontend healthyFe;
    MockSplitQueue driver;
    final CountDownLatch release = new CountDownLatch(1);

    @BeforeEach
    void start() throws Exception {
        host = new Host(2);
        stuck = new RecordingDevice(1, 0);
        stuck.serve = true;
        // devices go to the two control loops round robin: the first and the third share loop 0
        stuckCtx = host.newContext("stuck");
        host.addDevice(stuckCtx, stuck, dir.resolve("stuck.sock"), Host.Mode.LISTEN);
        host.addDevice(host.newContext("other-loop"), new RecordingDevice(1, 0), dir.resolve("x.sock"), Host.Mode.LISTEN);
        healthy = new RecordingDevice(1, 0);
        host.addDevice(host.newContext("healthy"), healthy, dir.resolve("healthy.sock"), Host.Mode.LISTEN);

        stuckFe = ScriptedFrontend.connect(dir.resolve("stuck.sock"));
        stuckFe.setOwner();
        stuckFe.setFeatures(stuckFe.getFeatures());
        stuckFe.setProtocolFeatures(ProtocolFeatures.REPLY_ACK);
        ScriptedFrontend.GuestRegion ram = stuckFe.addRegion(0, RAM);
        stuckFe.setMemTable();
        driver = MockSplitQueue.create(FakeGuestMemory.builder().region(0, ram.buffer()).build(), SIZE, 0x1000,
                RAM - 0x1000);
        stuckFe.setVringNum(0, SIZE);
        stuckFe.setVringBase(0, 0);
        stuckFe.setVringAddrGpa(0, driver.descGpa(), driver.availGpa(), driver.usedGpa());
        stuckFe.setVringCall(0);
        stuckFe.setVringEnable(0, true);
        stuckFe.setVringKick(0);
        stuck.await("start 0");
        stuck.await("kick 0"); // the kick handOver delivers for buffers made available before the start
        // from here on the device's handleKick hangs until release
        stuck.holdKick = release;
        driver.addChain(new byte[][] {"ping".getBytes()}, new int[] {64});
        stuckFe.kick(0);
        stuck.await("kick 0");

        healthyFe = ScriptedFrontend.connect(dir.resolve("healthy.sock"));
    }

    @AfterEach
    void stop() throws Exception {
        release.countDown();
        stuckFe.close();
        healthyFe.close();
        host.close();
    }

    @Test
    void aStuckCallbackDelaysOnlyItsOwnConnection() throws Exception {
        // GET_VRING_BASE must wait for the worker that runs the hanging handleKick
        stuckFe.send(FrontendRequest.GET_VRING_BASE.code(), MessageHeader.VERSION, VringStateLayout.of(0, 0));
        Thread.sleep(100); // the shared control loop has taken the request

        long worst = worstRoundTripMs(healthyFe, 1000);
        assertTrue(worst < PROMPT_MS, "a healthy device on the same control loop answered within "
                + PROMPT_MS + " ms while another device's callback hung; slowest round trip " + worst + " ms");

        release.countDown();
        ScriptedFrontend.Reply r = stuckFe.readReply();
        assertEquals(FrontendRequest.GET_VRING_BASE.code(), r.header().request());
        assertEquals(1, VringStateLayout.num(r.payload()), "the ring stopped after the chain the device took");
        stuck.await("stop 0");
        assertEquals(0, stuckFe.call(FrontendRequest.SET_OWNER, null).u64(), "the connection reads again");
    }

    /**
     * The back-end ends a connection (a malformed message) while a callback hangs: its socket stays open
     * while the ring may still write (see the used-index test in DataPathFaultTest), but not longer than
     * the grace, so the front-end learns of the end.
     */
    @Test
    void aConnectionEndedWhileACallbackHangsClosesItsSocketAfterAGrace() throws Exception {
        long t0 = System.nanoTime();
        stuckFe.send(0x7fff, MessageHeader.VERSION, java.nio.ByteBuffer.allocate(0));
        assertFalse(stuckFe.isClosedByPeer(500), "closed while the ring's worker may still write its used ring");
        assertTrue(stuckFe.isClosedByPeer(3000), "the socket closes after the grace, whatever the worker does");
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms >= 900 && ms < 2500, "closed after " + ms + " ms");
        assertTrue(worstRoundTripMs(healthyFe, 20) < PROMPT_MS, "the healthy device answers promptly");
    }

    /** The service manager's watchdog probe: every loop thread must answer, and a hung worker does not. */
    @Test
    void loopsAnswerOnlyWhileNoCallbackHangs() throws Exception {
        assertFalse(host.loopsAnswer(300), "a worker held by a hanging handleKick answered");
        release.countDown();
        assertTrue(host.loopsAnswer(2000), "every worker and control loop answers once the callback returned");
    }

    @Test
    void aFrontEndLeavingWhileACallbackHangsGetsItsMemoryUnmappedOnceItReturns() throws Exception {
        stuckFe.close(); // the front-end unmaps its own view of the guest RAM
        Thread.sleep(100);
        long worst = worstRoundTripMs(healthyFe, 1000);
        assertTrue(worst < PROMPT_MS, "a healthy device on the same control loop answered within "
                + PROMPT_MS + " ms while another connection closed behind a hanging callback; slowest " + worst + " ms");
        assertEquals(1, guestMappings(), "the back-end keeps the guest RAM mapped while the callback may read it");

        release.countDown();
        stuck.await("stop 0");
        stuck.await("reset");
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (guestMappings() > 0 && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertEquals(0, guestMappings(), "guest RAM mappings left after the hanging callback returned");
    }

    @Test
    void aFrontEndLeavingWhileItsRequestWaitsForAHangingCallbackIsLetGo() throws Exception {
        // the connection is not read while GET_VRING_BASE waits; the hang-up must still end it
        stuckFe.send(FrontendRequest.GET_VRING_BASE.code(), MessageHeader.VERSION, VringStateLayout.of(0, 0));
        Thread.sleep(100);
        stuckFe.close();
        long deadline = System.nanoTime() + 3_000_000_000L;
        while (host.status(stuckCtx).connected() && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertFalse(host.status(stuckCtx).connected(), "the front-end's hang-up was seen while its request waited");
        assertEquals(1, guestMappings(), "the back-end keeps the guest RAM mapped while the callback may read it");
        assertTrue(worstRoundTripMs(healthyFe, 20) < PROMPT_MS, "the healthy device answers promptly");

        release.countDown();
        stuck.await("stop 0");
        stuck.await("reset");
        deadline = System.nanoTime() + 5_000_000_000L;
        while (guestMappings() > 0 && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertEquals(0, guestMappings(), "guest RAM mappings left after the hanging callback returned");
        // the device serves a new front-end
        try (ScriptedFrontend again = ScriptedFrontend.connect(dir.resolve("stuck.sock"))) {
            assertTrue(again.getFeatures() != 0);
        }
    }

    @Test
    void aHangingCallbackIsReportedOnceWithItsDeviceQueueAndStack() throws Exception {
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        PrintStream original = System.err;
        // slf4j-simple writes to whatever System.err is at the time
        System.setErr(new PrintStream(new TeeOutputStream(original, log), true));
        try {
            Thread.sleep(2500); // the callback hangs 2.5 s past the setup: ten watchdog rounds
        } finally {
            System.setErr(original);
        }
        String text = log.toString();
        int reports = text.split("stuck queue 0 has been running for", -1).length - 1;
        assertEquals(1, reports, "WARNs about the hanging handleKick of device 'stuck' queue 0; log:\n" + text);
        assertTrue(text.contains("RecordingDevice.handleKick"), "the report shows the worker's stack; log:\n" + text);
    }

    /** Writes to two streams. */
    private static final class TeeOutputStream extends OutputStream {
        private final OutputStream a;
        private final OutputStream b;

        TeeOutputStream(OutputStream a, OutputStream b) {
            this.a = a;
            this.b = b;
        }

        @Override
        public synchronized void write(int c) throws IOException {
            a.write(c);
            b.write(c);
        }

        @Override
        public synchronized void write(byte[] buf, int off, int len) throws IOException {
            a.write(buf, off, len);
            b.write(buf, off, len);
        }
    }

    /** The slowest of {@code n} GET_FEATURES round trips, in ms; prints the distribution. */
    private static long worstRoundTripMs(ScriptedFrontend fe, int n) throws IOException {
        long[] us = new long[n];
        for (int i = 0; i < n; i++) {
            long t0 = System.nanoTime();
            assertTrue(fe.getFeatures() != 0);
            us[i] = (System.nanoTime() - t0) / 1000;
        }
        java.util.Arrays.sort(us);
        System.out.printf("healthy device round trips while another device's callback hangs: n=%d p50=%d us "
                + "p99=%d us max=%d us%n", n, us[n / 2], us[(int) (n * 0.99)], us[n - 1]);
        return us[n - 1] / 1000;
    }

    /** Mappings of the test's guest-RAM memfds in this process (front-end and back-end share it). */
    static long guestMappings() throws IOException {
        try (var lines = Files.lines(Path.of("/proc/self/maps"))) {
            return lines.filter(l -> l.contains("jvhost-test-guest")).count();
        }
    }
}
