package org.jvhost.host.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A Linux guest in QEMU, using its stock virtio-net driver over vhost-user, against the back-end under
 * test (a reflector). The guest pings a peer through a static ARP entry; the reflector returns each echo
 * request addressed to the guest's MAC, so eth0's rx_packets counts the frames that made the round
 * trip through guest memory, the rings and both notification paths (kick and call).
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class QemuGuestIT {

    private static final int FRAMES = 20;
    private static final String BURST = QemuGuest.burst(FRAMES);
    private static final Pattern RXQ_DELTA = Pattern.compile("rxq_delta=([\\d,]+)");

    @RegisterExtension
    final PeerScope scope = new PeerScope();
    private final Backend backend = Backend.selected();
    private ProcessUnderTest back;
    private QemuGuest guest;

    @BeforeEach
    void assumePeers() {
        Peers.assumeInstalled(Peers.QEMU, "qemu-system-x86");
        backend.assumeAvailable();
    }

    @Test
    void guestFramesComeBackWhenBackendListens() {
        Path sock = scope.sockets().resolve("vhost.sock");
        back = scope.track(backend.start(backend.name(), sock, 1, Backend.Role.LISTEN, scope.logs()));
        guest = scope.track(QemuGuest.start("qemu", sock, 1, false, BURST, scope.logs()));
        assertGuestPassed();
    }

    @Test
    void guestFramesComeBackWhenQemuListens() {
        Path sock = scope.sockets().resolve("vhost.sock");
        guest = scope.track(QemuGuest.start("qemu", sock, 1, true, BURST, scope.logs()));
        Peers.awaitNewFile(sock, null, Duration.ofSeconds(30), guest.process());
        back = scope.track(backend.start(backend.name(), sock, 1, Backend.Role.CONNECT, scope.logs()));
        assertGuestPassed();
    }

    /**
     * Two queue pairs ({@code mq=on}, guest {@code ethtool -L eth0 combined 2}), the guest sending from
     * both vCPUs, i.e. on both transmit queues. Every receive queue must get frames back: virtio 1.2
     * 5.1.6.5.6 says the device SHOULD steer a flow to the receiveq paired with the transmitq it came
     * from, which for a reflector means each queue pair carries its own frames.
     */
    @Test
    void guestFramesComeBackOnEveryQueuePair() {
        Path sock = scope.sockets().resolve("vhost.sock");
        back = scope.track(backend.start(backend.name(), sock, 2, Backend.Role.LISTEN, scope.logs()));
        guest = scope.track(QemuGuest.start("qemu", sock, 2, false, BURST, scope.logs()));
        String result = assertGuestPassed();
        QemuGuest.assertPackedRing(false, guest.process().outputSince(0)); // split: the packed test's check can fail
        Matcher m = RXQ_DELTA.matcher(result);
        assertTrue(m.find(), "no rxq_delta in '" + result + "'");
        String[] perQueue = m.group(1).split(",");
        assertEquals(2, perQueue.length, "receive queues the guest reports in '" + result + "'");
        for (int q = 0; q < perQueue.length; q++) {
            assertTrue(Long.parseLong(perQueue[q]) > 0, "receive queue " + q + " got no frames back: " + result);
        }
    }

    /**
     * Packed rings (issue 15): QEMU's {@code packed=on} with two queue pairs. The guest's frames must come
     * back on every receive queue, the guest's driver must have negotiated bit 34 (its sysfs features),
     * and jvhost must have started all four rings as packed rings (it logs each; QEMU would quietly fall
     * back to split rings if bit 34 were not offered).
     */
    @Test
    void guestFramesComeBackOverPackedRingsOnEveryQueuePair() {
        Path sock = scope.sockets().resolve("vhost.sock");
        back = scope.track(backend.start(backend.name(), sock, 2, Backend.Role.LISTEN, scope.logs()));
        int mark = back.mark();
        guest = scope.track(QemuGuest.start("qemu", sock, 2, false, BURST, scope.logs(), ",packed=on"));
        String result = assertGuestPassed();
        QemuGuest.assertPackedRing(true, guest.process().outputSince(0));
        Matcher m = RXQ_DELTA.matcher(result);
        assertTrue(m.find(), "no rxq_delta in '" + result + "'");
        for (String perQueue : m.group(1).split(",")) {
            assertTrue(Long.parseLong(perQueue) > 0, "a receive queue got no frames back: " + result);
        }
        if (backend instanceof JvhostBackend) {
            String log = back.outputSince(mark);
            for (int q = 0; q < 4; q++) {
                assertTrue(log.contains("queue " + q + " starts as a packed ring"), "queue " + q
                        + " did not start as a packed ring" + back.tail());
            }
        }
    }

    /**
     * The back-end dies (SIGKILL, no goodbye) under a running guest: the guest's receive counter must
     * stop, and after a new back-end comes up on the same socket path QEMU re-connects
     * ({@code reconnect=1}), re-sends the device state, and the counter grows again.
     */
    @Test
    void guestTrafficResumesAfterBackendRestart() {
        trafficResumesAfterBackendRestart("");
    }

    /** The same over packed rings ({@code packed=on}, issue 15): the new back-end starts them packed again. */
    @Test
    void guestTrafficResumesAfterBackendRestartOnPackedRings() {
        trafficResumesAfterBackendRestart(",packed=on");
    }

    private void trafficResumesAfterBackendRestart(String nicExtra) {
        Path sock = scope.sockets().resolve("vhost.sock");
        back = scope.track(backend.start(backend.name() + "-1", sock, 1, Backend.Role.LISTEN, scope.logs()));
        guest = scope.track(QemuGuest.start("qemu", sock, 1, false, "jvtest.mode=periodic jvtest.interval=0.5",
                scope.logs(), nicExtra));

        long before = guest.nextRxPackets(0, QemuGuest.BOOT_TIMEOUT, back);
        long flowing = guest.awaitRxAbove(before + 3, Duration.ofSeconds(30), back);

        back.kill();
        Peers.sleep(Duration.ofSeconds(2));
        long stalledFrom = guest.nextRxPackets(guest.process().mark(), Duration.ofSeconds(10), null);
        Peers.sleep(Duration.ofSeconds(2));
        long stalledTo = guest.nextRxPackets(guest.process().mark(), Duration.ofSeconds(10), null);
        assertEquals(stalledFrom, stalledTo, "guest kept receiving with the back-end dead: the counter does not"
                + " measure the back-end (was " + flowing + " before the kill)" + guest.process().tail());

        back.close();
        back = scope.track(backend.start(backend.name() + "-2", sock, 1, Backend.Role.LISTEN, scope.logs()));
        int mark = back.mark();
        long resumed = guest.awaitRxAbove(stalledTo + 3, Duration.ofSeconds(60), back);
        assertTrue(guest.process().isAlive(), "QEMU exited after the back-end restart" + guest.process().tail());
        assertTrue(resumed > stalledTo);
        if (!nicExtra.isEmpty() && backend instanceof JvhostBackend) {
            String log = back.outputSince(mark);
            assertTrue(log.contains("queue 0 starts as a packed ring") && log.contains("queue 1 starts as a packed ring"),
                    "the new back-end did not start both rings packed" + back.tail());
        }
    }

    /** Asserts the burst-mode verdict and a clean QEMU exit; returns the verdict line. */
    private String assertGuestPassed() {
        return guest.assertBurstPassed(FRAMES, "guest (back-end " + backend.name() + ")", back);
    }
}
