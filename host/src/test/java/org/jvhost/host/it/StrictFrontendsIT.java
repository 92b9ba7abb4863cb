package org.jvhost.host.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Strict mode against real front-ends: QEMU 7.2 and DPDK testpmd over a full session (multiqueue
 * traffic, a back-end restart that QEMU reconnects to) must draw no report. A report here is a false
 * positive of jvhost's checks, or a real bug of the front-end to look up in the trace each test writes
 * ({@code it-logs/.../*.trace}, text format; the QEMU boot's trace is the README's example).
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class StrictFrontendsIT {
    private static final int FRAMES = 20;
    /** What strict mode's WARN lines say ({@code Instrument.report}). */
    private static final String REPORT = "front-end broke";

    @RegisterExtension
    final PeerScope scope = new PeerScope();

    @Test
    void qemuGuestWithTwoQueuePairsIsNeverReported() {
        Peers.assumeInstalled(Peers.QEMU, "qemu-system-x86");
        Path sock = scope.sockets().resolve("vhost.sock");
        Path trace = scope.logs().resolve("qemu-boot.trace");
        ProcessUnderTest back = scope.track(strictJvhost("jvhost", sock, 2, trace));
        QemuGuest guest = scope.track(QemuGuest.start("qemu", sock, 2, false, QemuGuest.burst(FRAMES), scope.logs()));
        guest.assertBurstPassed(FRAMES, "guest (strict jvhost)", back);
        assertNoReport(back);
        assertTrue(read(trace).contains(" <- ADD_MEM_REG "),
                "the trace has the boot's messages (QEMU 7.2 shares memory with ADD_MEM_REG)");
    }

    /**
     * Packed rings ({@code packed=on}): Linux's packed-ring driver kicks as the device event suppression
     * says, so strict mode's packed checks (tx_device_writable, kick_while_suppressed) stay silent, and
     * jvhost logs for each ring which rules apply to it.
     */
    @Test
    void qemuGuestOnPackedRingsIsNeverReported() {
        Peers.assumeInstalled(Peers.QEMU, "qemu-system-x86");
        Path sock = scope.sockets().resolve("vhost.sock");
        ProcessUnderTest back = scope.track(strictJvhost("jvhost", sock, 2, scope.logs().resolve("qemu-packed.trace")));
        QemuGuest guest = scope.track(QemuGuest.start("qemu", sock, 2, false, QemuGuest.burst(FRAMES), scope.logs(),
                ",packed=on"));
        guest.assertBurstPassed(FRAMES, "guest on packed rings (strict jvhost)", back);
        assertNoReport(back);
        assertPackedRingsChecked(back, 4);
    }

    /** QEMU re-sends the whole device state to a restarted back-end ({@code reconnect=1}): still clean. */
    @Test
    void qemuReconnectingToARestartedBackendIsNeverReported() {
        Peers.assumeInstalled(Peers.QEMU, "qemu-system-x86");
        Path sock = scope.sockets().resolve("vhost.sock");
        ProcessUnderTest first = scope.track(strictJvhost("jvhost-1", sock, 1, scope.logs().resolve("qemu-1.trace")));
        QemuGuest guest = scope.track(QemuGuest.start("qemu", sock, 1, false, "jvtest.mode=periodic jvtest.interval=0.5",
                scope.logs()));
        long flowing = guest.awaitRxAbove(guest.nextRxPackets(0, QemuGuest.BOOT_TIMEOUT, first) + 3,
                Duration.ofSeconds(30), first);
        assertNoReport(first);
        first.kill();
        first.close();
        ProcessUnderTest second = scope.track(strictJvhost("jvhost-2", sock, 1, scope.logs().resolve("qemu-2.trace")));
        guest.awaitRxAbove(flowing + 3, Duration.ofSeconds(60), second);
        assertNoReport(second);
    }

    @Test
    void testpmdWithTwoQueuesIsNeverReported() {
        testpmdRoundTripIsNeverReported("");
    }

    /** The same with {@code packed_vq=1}: strict mode checks the packed rings and finds nothing. */
    @Test
    void testpmdOnPackedRingsIsNeverReported() {
        assertPackedRingsChecked(testpmdRoundTripIsNeverReported(",packed_vq=1"), 4);
    }

    private ProcessUnderTest testpmdRoundTripIsNeverReported(String vdevOptions) {
        Peers.assumeInstalled(Peers.TESTPMD, "dpdk-dev");
        Path sock = scope.sockets().resolve("vhost.sock");
        ProcessUnderTest back = scope.track(strictJvhost("jvhost", sock, 2, scope.logs().resolve("testpmd.trace")));
        TestpmdFrontEnd front = scope.track(TestpmdFrontEnd.start("testpmd", sock, 2, "io", false, scope.logs(),
                TestpmdFrontEnd.NO_HUGE, vdevOptions));
        front.startRoundTrip();
        front.sample(Duration.ofSeconds(1)).assertFlowing(1000, "testpmd against strict jvhost", back);
        assertEquals(2, front.stop().size(), "forwarding streams");
        front.close(); // quits: the session ends with GET_VRING_BASE and a disconnect
        Peers.sleep(Duration.ofMillis(500));
        assertNoReport(back);
        return back;
    }

    /** jvhost said for each of the {@code rings} rings that it checks it as a packed ring. */
    private static void assertPackedRingsChecked(ProcessUnderTest back, int rings) {
        String out = back.outputSince(0);
        for (int q = 0; q < rings; q++) {
            assertTrue(out.contains("strict: queue " + q + " is a packed ring"), "no strict-mode line for packed ring "
                    + q + back.tail());
        }
    }

    /** jvhost listening on {@code sock} with a loopback device in strict mode, tracing as text to {@code trace}. */
    private static ProcessUnderTest strictJvhost(String name, Path sock, int queues, Path trace) {
        String device = "loopback:socket=" + sock + ",queues=" + queues + ",strict=on,trace=" + trace
                + ",trace-format=text";
        return Serve.listening(name, sock, device, trace.getParent());
    }

    private static void assertNoReport(ProcessUnderTest back) {
        String out = back.outputSince(0);
        assertTrue(!out.contains(REPORT), "strict mode reported the front-end:\n" + out.lines()
                .filter(l -> l.contains(REPORT)).reduce("", (a, b) -> a + b + "\n"));
    }

    private static String read(Path file) {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
