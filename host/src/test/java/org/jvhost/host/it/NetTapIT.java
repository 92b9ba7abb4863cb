package org.jvhost.host.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * jvhost's {@code net} device between a real front-end and a real TAP. Each test makes its own network
 * namespace ({@link NetNamespace}) and runs jvhost inside it, where jvhost creates the TAP; the TAP's
 * side of the private /24 is the peer. Needs root (CAP_NET_ADMIN for the namespace and the TAP).
 *
 * <ul>
 *   <li>QEMU guests (TCG) ping the peer, send 8 MiB over TCP to it and receive 8 MiB from it (busybox
 *       nc against socat; both checksums compared) and run iperf3 against it, with the default
 *       negotiation, with {@code mrg_rxbuf=off}, with {@code csum=off,guest_tso4=off}, and with two queue
 *       pairs, where both pairs must carry traffic both ways;</li>
 *   <li>testpmd's virtio_user: txonly frames show up in the TAP's counters; datagrams the namespace sends
 *       out of the TAP reach testpmd in rxonly.</li>
 * </ul>
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class NetTapIT {
    private static final String TAP = "jvtap0";
    private static final int MIB = 8;
    private static final Pattern TXSUM = Pattern.compile("JVTEST TXSUM ([0-9a-f]{32})");
    private static final Pattern RXSUM = Pattern.compile("JVTEST RXSUM ([0-9a-f]{32}) bytes=(\\d+)");
    private static final Pattern RXQ = Pattern.compile("JVTEST RXQ rxq_delta=([\\d,]+) txq_delta=([\\d,]+)");
    private static final Pattern IPERF = Pattern.compile("JVTEST IPERF ([^\\r\\n]*)");

    /** Stops everything in reverse order of start; the namespace (and the TAP in it) goes last. */
    @RegisterExtension
    final PeerScope scope = new PeerScope();
    private Path sockets;
    private Path logs;
    private NetNamespace ns;
    private ProcessUnderTest jvhost;

    @BeforeEach
    void setUp() {
        Peers.assumeInstalled(Peers.TASKSET, "util-linux");
        sockets = scope.sockets();
        logs = scope.logs();
        ns = scope.track(NetNamespace.create());
    }

    /** jvhost inside the namespace, serving {@code net:socket=SOCK,tap=jvtap0,OPTIONS}; the TAP then gets the peer address. */
    private Path startJvhost(String options) {
        Path sock = sockets.resolve("net.sock");
        List<String> serve = Serve.command(Serve.ON_BACK_END_CPU,
                List.of("--device", "net:socket=" + sock + ",tap=" + TAP + "," + options));
        jvhost = scope.track(ProcessUnderTest.start("jvhost", ns.inside(serve.toArray(String[]::new)), logs));
        Peers.awaitNewFile(sock, null, Duration.ofSeconds(30), jvhost);
        ns.configureTap(TAP);
        return sock;
    }

    @Test
    void guestPingsTransfersAndRunsIperfWithDefaultNegotiation() {
        guestAgainstTapPeer(1, ",uring=on", ""); // TX through io_uring, or jvhost refuses to start
    }

    @Test
    void guestWithoutMergeableRxBuffersAndTxByWritev() {
        guestAgainstTapPeer(1, ",uring=off", ",mrg_rxbuf=off");
    }

    @Test
    void guestWithoutChecksumOffloadAndGuestTso4() {
        guestAgainstTapPeer(1, "", ",csum=off,guest_tso4=off");
    }

    /**
     * Packed rings ({@code packed=on}, issue 15): the same traffic, the guest's driver negotiated bit 34,
     * and jvhost started both rings packed.
     */
    @Test
    void guestOnPackedRingsPingsTransfersAndRunsIperf() {
        QemuGuest.assertPackedRing(true, guestAgainstTapPeer(1, "", ",packed=on"));
        String log = jvhost.outputSince(0);
        assertTrue(log.contains("queue 0 starts as a packed ring") && log.contains("queue 1 starts as a packed ring"),
                "jvhost did not start both rings packed" + jvhost.tail());
    }

    @Test
    void guestWithTwoQueuePairsUsesBoth() {
        String out = guestAgainstTapPeer(2, "", "");
        Matcher m = RXQ.matcher(out);
        assertTrue(m.find(), "no per-queue counters from the guest");
        for (int g = 1; g <= 2; g++) {
            String[] perQueue = m.group(g).split(",");
            assertEquals(2, perQueue.length, m.group());
            for (int q = 0; q < 2; q++) {
                assertTrue(Long.parseLong(perQueue[q]) > 0, (g == 1 ? "receive" : "transmit") + " queue " + q
                        + " carried nothing: " + m.group());
            }
        }
    }

    /**
     * Boots a guest on the net device ({@code jvhostExtra}: more device options, {@code nicExtra}: more
     * options of QEMU's virtio-net-pci) and checks its verdicts against the namespace's side; returns the
     * guest's output.
     */
    private String guestAgainstTapPeer(int queues, String jvhostExtra, String nicExtra) {
        Peers.assumeInstalled(Peers.QEMU, "qemu-system-x86");
        Peers.assumeInstalled("/usr/bin/socat", "socat");
        Peers.assumeInstalled("/usr/bin/iperf3", "iperf3");
        Path sock = startJvhost("queues=" + queues + jvhostExtra);
        String peer = ns.peerAddress();
        Path toGuest = randomFile(sockets.resolve("to-guest.bin"), MIB << 20);
        Path fromGuest = sockets.resolve("from-guest.bin");
        ProcessUnderTest sink = scope.track(ProcessUnderTest.start("socat-5001", ns.inside("timeout", "200", "socat", "-u",
                "TCP-LISTEN:5001,bind=" + peer + ",reuseaddr", "CREATE:" + fromGuest), logs));
        scope.track(ProcessUnderTest.start("socat-5002", ns.inside("timeout", "200", "socat", "-u", "OPEN:" + toGuest,
                "TCP-LISTEN:5002,bind=" + peer + ",reuseaddr"), logs));
        scope.track(ProcessUnderTest.start("iperf3-server", ns.inside("timeout", "200", "iperf3", "-s", "-1", "-B", peer), logs));

        QemuGuest guest = scope.track(QemuGuest.start("qemu", sock, queues, false, "jvtest.mode=tap jvtest.ip="
                + ns.guestAddress() + "/24 jvtest.peer=" + peer + " jvtest.mib=" + MIB + " jvtest.iperf=1", logs, nicExtra));
        String verdict = guest.awaitResult(jvhost);
        String out = guest.process().outputSince(0);
        assertTrue(verdict.startsWith("PASS"), "guest reported " + verdict + guest.process().tail() + jvhost.tail());

        assertEquals(0, sink.awaitExit(Duration.ofSeconds(30)), "socat receiving from the guest");
        assertEquals(find(TXSUM, out).group(1), md5(fromGuest), "what the guest sent arrived intact");
        Matcher rx = find(RXSUM, out);
        assertEquals(md5(toGuest), rx.group(1), "what the peer sent arrived intact in the guest");
        assertEquals(MIB << 20, Long.parseLong(rx.group(2)));
        String iperf = find(IPERF, out).group(1);
        assertTrue(iperf.contains("receiver") && iperf.contains("bits/sec"), "iperf3 summary: " + iperf);
        assertEquals(0, guest.process().awaitExit(Duration.ofSeconds(30)), "QEMU exit status after guest poweroff");
        return out;
    }

    /**
     * testpmd's virtio_user on the net device: txonly frames appear in the TAP's rx counters in the
     * namespace; then datagrams the namespace sends out of the TAP reach testpmd in rxonly
     * ({@link TapTraffic}).
     */
    @Test
    void testpmdTxonlyReachesTheTapAndTapFramesReachTestpmdRxonly() {
        Peers.assumeInstalled(Peers.TESTPMD, "dpdk-dev");
        Path sock = startJvhost("queues=1,uring=on");
        TestpmdFrontEnd front = scope.track(TestpmdFrontEnd.start("testpmd", sock, 1, "txonly", false, logs));
        TapTraffic.txonlyReachesTheTap(front, ns, TAP, 1, jvhost);
        TapTraffic.tapFramesReachRxonly(front, ns, TAP, 1, jvhost, scope);
    }

    private static Matcher find(Pattern p, String out) {
        Matcher m = p.matcher(out);
        assertTrue(m.find(), "guest output has no /" + p + "/");
        return m;
    }

    private static Path randomFile(Path file, int bytes) {
        byte[] data = new byte[bytes];
        new Random(bytes).nextBytes(data);
        try {
            return Files.write(file, data);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static String md5(Path file) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("MD5").digest(Files.readAllBytes(file)));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }
}
