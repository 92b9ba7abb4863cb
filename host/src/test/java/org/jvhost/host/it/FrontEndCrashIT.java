package org.jvhost.host.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.jvhost.host.it.ProcessResources.Snapshot;
import org.jvhost.host.it.TestpmdFrontEnd.Interval;
import org.jvhost.host.it.TestpmdFrontEnd.PortStats;

/**
 * A front-end that dies with SIGKILL says no goodbye: no GET_VRING_BASE, no REM_MEM_REG, just a socket
 * that reads EOF. The back-end must then release everything the session held (the socket, the kick and
 * call eventfds, the mappings of the front-end's memory), or a long-running daemon leaks fds and whole
 * guest RAM images per crashed VM, and must take the next front-end on the same socket.
 *
 * <p>Why the leak assertions can fail: while the front-end is connected each test first asserts that
 * the back-end holds more fds and more shared mappings than at the baseline, i.e. that the measure does
 * see the session (testpmd's {@code /memfd:nohuge}, QEMU's {@code /memfd:mem0}, 2 eventfds per queue plus
 * the socket). A back-end that kept any of them after the kill stays above the baseline and fails
 * {@link ProcessResources#awaitBaseline} with the list of what it still holds.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class FrontEndCrashIT {

    /** The back-end notices EOF at once; 10 s covers a loaded 2-CPU machine. */
    private static final Duration RELEASE_TIMEOUT = Duration.ofSeconds(10);
    private static final long MIN_FRAMES = 10_000;

    @RegisterExtension
    final PeerScope scope = new PeerScope();
    private final Backend backend = Backend.selected();
    private ProcessUnderTest back;
    private TestpmdFrontEnd front;
    private QemuGuest guest;

    @BeforeEach
    void assumeBackend() {
        backend.assumeAvailable();
    }

    @Test
    void testpmdKilledMidTrafficLeavesNothingBehindAndTheNextOneFlows() {
        Peers.assumeInstalled(Peers.TESTPMD, "dpdk-dev");
        Path sock = scope.sockets().resolve("vhost.sock");
        back = scope.track(backend.start(backend.name(), sock, 1, Backend.Role.LISTEN, scope.logs()));
        Snapshot baseline = settledBaseline();

        front = scope.track(TestpmdFrontEnd.start("testpmd-1", sock, 1, "io", false, scope.logs()));
        front.startRoundTrip();
        assertFlowing(front.portStats(), "first testpmd");
        assertHoldsMoreThan(baseline, "testpmd's memory and eventfds");

        front.process().kill();
        Duration released = ProcessResources.awaitBaseline(back, baseline, RELEASE_TIMEOUT);
        System.out.println("testpmd SIGKILL: " + backend.name() + " back to baseline after " + released.toMillis() + " ms");
        assertTrue(back.isAlive(), backend.name() + " exited after the front-end was killed" + back.tail());
        front.close();

        front = scope.track(TestpmdFrontEnd.start("testpmd-2", sock, 1, "io", false, scope.logs()));
        front.startRoundTrip();
        Interval interval = front.sample(Duration.ofSeconds(2));
        front.stop();
        assertFlowing(interval.second(), "second testpmd");
        assertTrue(interval.rxPackets() >= MIN_FRAMES, "second testpmd: RX stalled between "
                + interval.first() + " and " + interval.second() + back.tail());
    }

    /**
     * The same with QEMU: killed once the guest's link is up (memory table and vrings are set then),
     * and a second guest on the same socket gets its frames back.
     */
    @Test
    void qemuKilledAfterLinkUpLeavesNothingBehindAndTheNextGuestPasses() {
        Peers.assumeInstalled(Peers.QEMU, "qemu-system-x86");
        Path sock = scope.sockets().resolve("vhost.sock");
        back = scope.track(backend.start(backend.name(), sock, 1, Backend.Role.LISTEN, scope.logs()));
        Snapshot baseline = settledBaseline();

        guest = scope.track(QemuGuest.start("qemu-1", sock, 1, false, "jvtest.mode=periodic jvtest.interval=0.5",
                scope.logs()));
        guest.awaitLinkUp(back);
        guest.awaitRxAbove(0, Duration.ofSeconds(30), back);
        assertHoldsMoreThan(baseline, "QEMU's guest RAM and eventfds");

        guest.process().kill();
        Duration released = ProcessResources.awaitBaseline(back, baseline, RELEASE_TIMEOUT);
        System.out.println("QEMU SIGKILL: " + backend.name() + " back to baseline after " + released.toMillis() + " ms");
        assertTrue(back.isAlive(), backend.name() + " exited after QEMU was killed" + back.tail());
        guest.close();

        guest = scope.track(QemuGuest.start("qemu-2", sock, 1, false, QemuGuest.burst(20), scope.logs()));
        guest.assertBurstPassed(20, "second guest", back);
    }

    /**
     * The back-end's resources once it listens and has settled: two equal samples a second apart, so a
     * JVM still opening its own files at start-up does not pass for a leak later.
     */
    private Snapshot settledBaseline() {
        Snapshot previous = ProcessResources.snapshot(back.pid());
        for (int i = 0; i < 10; i++) {
            Peers.sleep(Duration.ofSeconds(1));
            Snapshot now = ProcessResources.snapshot(back.pid());
            if (now.fds() == previous.fds() && now.sharedCount() == previous.sharedCount()) {
                return now;
            }
            previous = now;
        }
        throw new AssertionError(backend.name() + " never settled: fds/mappings keep changing, last " + previous.describe());
    }

    private void assertHoldsMoreThan(Snapshot baseline, String what) {
        Snapshot during = ProcessResources.snapshot(back.pid());
        String where = "\nbaseline: " + baseline.describe() + "\nconnected: " + during.describe();
        assertTrue(during.fds() > baseline.fds(), backend.name() + " holds no more fds with a front-end connected than"
                + " without: the fd count does not see " + what + where);
        assertTrue(during.sharedCount() > baseline.sharedCount(), backend.name() + " maps no more shared memory with a"
                + " front-end connected than without: the mapping count does not see " + what + where);
    }

    private void assertFlowing(PortStats stats, String who) {
        assertTrue(stats.txPackets() >= MIN_FRAMES, who + ": only " + stats.txPackets() + " frames sent" + back.tail());
        assertTrue(stats.rxPackets() >= MIN_FRAMES, who + ": only " + stats.rxPackets() + " frames came back" + back.tail());
        assertEquals(0, stats.rxErrors(), who + ": RX-errors " + stats);
        assertEquals(0, stats.txErrors(), who + ": TX-errors " + stats);
        assertEquals(0, stats.rxNoMbuf(), who + ": RX-nombuf " + stats);
    }
}
