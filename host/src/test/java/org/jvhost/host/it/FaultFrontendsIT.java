package org.jvhost.host.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Faults injected by jvhost against real front-ends (the README's fault table): QEMU 7.2 with
 * {@code reconnect=1} survives a connection dropped after request N of its start-up sequence and its
 * guest's traffic resumes; testpmd survives slow replies. Each test keeps a text trace in its it-logs.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class FaultFrontendsIT {
    private static final String INJECTED = "fault injected";

    @RegisterExtension
    final PeerScope scope = new PeerScope();

    /**
     * Requests 3 (protocol features), 30 (vring set-up while the guest driver starts) and 60 (ring
     * start) of QEMU's first connection: see docs/examples/qemu-7.2-boot.trace for what each is.
     */
    @ParameterizedTest(name = "drop after request {0}")
    @ValueSource(ints = {3, 30, 60})
    void qemuReconnectsAfterADroppedConnectionAndTrafficResumes(int n) {
        Peers.assumeInstalled(Peers.QEMU, "qemu-system-x86");
        Path sock = scope.sockets().resolve("vhost.sock");
        ProcessUnderTest back = scope.track(jvhost(sock, 1, "fault-drop-after-message=" + n));
        QemuGuest guest = scope.track(QemuGuest.start("qemu", sock, 1, false, "jvtest.mode=periodic jvtest.interval=0.5",
                scope.logs()));
        long rx = guest.nextRxPackets(0, QemuGuest.BOOT_TIMEOUT, back);
        guest.awaitRxAbove(rx + 3, Duration.ofSeconds(60), back);
        assertEquals(1, count(back.outputSince(0), INJECTED), "one fault injected" + back.tail());
        assertTrue(back.outputSince(0).contains("dropping the connection after request " + n), back.tail());
    }

    /** Every reply 100 ms late (testpmd sends about 15 requests with replies at start-up): traffic still flows. */
    @Test
    void testpmdSurvivesDelayedReplies() {
        Peers.assumeInstalled(Peers.TESTPMD, "dpdk-dev");
        Path sock = scope.sockets().resolve("vhost.sock");
        ProcessUnderTest back = scope.track(jvhost(sock, 1, "fault-delay-ms=100"));
        TestpmdFrontEnd front = scope.track(TestpmdFrontEnd.start("testpmd", sock, 1, "io", false, scope.logs()));
        front.startRoundTrip();
        front.sample(Duration.ofSeconds(1)).assertFlowing(1000, "testpmd with replies delayed 100 ms", back);
        front.stop();
        assertTrue(count(back.outputSince(0), INJECTED) > 0, "replies were delayed" + back.tail());
    }

    /** jvhost listening on {@code sock} with a loopback device and {@code faults}, tracing as text. */
    private ProcessUnderTest jvhost(Path sock, int queues, String faults) {
        String device = "loopback:socket=" + sock + ",queues=" + queues + "," + faults + ",trace="
                + scope.logs().resolve("jvhost.trace") + ",trace-format=text";
        Object stale = Peers.fileKey(sock);
        ProcessUnderTest p = ProcessUnderTest.start("jvhost", Serve.command(Serve.ON_BACK_END_CPU,
                List.of("--device", device)), scope.logs());
        try {
            Peers.awaitNewFile(sock, stale, Duration.ofSeconds(30), p);
            return p;
        } catch (RuntimeException | Error e) {
            p.close();
            throw e;
        }
    }

    private static long count(String text, String what) {
        return text.lines().filter(l -> l.contains(what)).count();
    }
}
