package org.jvhost.host.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
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
 * Hot upgrade (issue 14) under QEMU guests, one test per device type:
 * <ul>
 * <li>{@code net} (proof 2): a TCP stream through the TAP crosses the handover. jvhost runs in a network
 *     namespace of the test's ({@link NetNamespace}) where it creates the TAP; the successor takes the
 *     TAP's queues over as fds, so the interface keeps its index and its carrier never drops. The guest
 *     sends 1 MiB to the namespace and then receives 1 MiB, reading nothing for {@value #RX_DELAY_S} s
 *     first, so the receiving connection is open while the successor takes over. No connection is reset
 *     (either checksum would differ or nc fail), QEMU prints nothing and connects no second time.</li>
 * <li>{@code loopback}: the traffic gap as the guest sees it ({@link GuestGapProbe}) across a handover,
 *     and then across QEMU's reconnect path (kill and restart), for comparison.</li>
 * <li>{@code blk}: its connection is not handed over (said in the log); QEMU reconnects to the new
 *     process and the guest's writes go on intact.</li>
 * </ul>
 * Gaps are read from the logs as in {@link HotUpgradeIT}; each test prints one {@code UPGRADE-RESULT} line.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class HotUpgradeGuestIT {
    private static final String TAP = "jvtap0";
    private static final int RX_DELAY_S = 8;
    private static final int BLK_ROUNDS = 30;
    /** The guest's rings (QEMU's default for virtio-net-pci). */
    private static final int RING = 256;
    private static final Pattern TXSUM = Pattern.compile("JVTEST TXSUM ([0-9a-f]{32})");
    private static final Pattern RXSUM = Pattern.compile("JVTEST RXSUM ([0-9a-f]{32}) bytes=(\\d+)");
    private static final Pattern RUNS_AGAIN = Pattern.compile("INFO Connection - .* runs again");
    private static final Pattern CONNECTED = Pattern.compile("(\\S+) \\[[^]]+\\] INFO DeviceServer - .*front-end connected");
    private static final Pattern QEMU_SAYS = Pattern.compile("qemu-system-x86_64: ([^\\r\\n]*)");

    @RegisterExtension
    final PeerScope scope = new PeerScope();
    private Path sockets;
    private Path control;
    private NetNamespace ns;

    @BeforeEach
    void setUp() {
        Peers.assumeInstalled(Peers.TASKSET, "util-linux");
        Peers.assumeInstalled(Peers.QEMU, "qemu-system-x86");
        sockets = scope.sockets();
        control = sockets.resolve("control.sock");
    }

    private ProcessUnderTest serve(String name, Path sock, String... more) {
        List<String> args = new ArrayList<>(List.of("--device", "net:socket=" + sock + ",tap=" + TAP + ",queues=1",
                "--control", control.toString()));
        args.addAll(List.of(more));
        List<String> cmd = Serve.command(Serve.ON_BACK_END_CPU, args);
        return scope.track(ProcessUnderTest.start(name, ns.inside(cmd.toArray(String[]::new)), scope.logs()));
    }

    @Test
    void tcpStreamThroughTheTapCrossesTheHandover() {
        Peers.assumeInstalled("/usr/bin/socat", "socat");
        ns = scope.track(NetNamespace.create());
        Path sock = sockets.resolve("net.sock");
        ProcessUnderTest old = serve("jvhost-old", sock);
        Peers.awaitNewFile(control.resolveSibling("control.sock.handover"), null, Duration.ofSeconds(30), old);
        ns.configureTap(TAP);
        String linkBefore = link();
        String peer = ns.peerAddress();
        Path toGuest = randomFile(sockets.resolve("to-guest.bin"), 1 << 20);
        Path fromGuest = sockets.resolve("from-guest.bin");
        ProcessUnderTest sink = scope.track(ProcessUnderTest.start("socat-5001", ns.inside("timeout", "150", "socat",
                "-u", "TCP-LISTEN:5001,bind=" + peer + ",reuseaddr", "CREATE:" + fromGuest), scope.logs()));
        scope.track(ProcessUnderTest.start("socat-5002", ns.inside("timeout", "150", "socat", "-u", "OPEN:" + toGuest,
                "TCP-LISTEN:5002,bind=" + peer + ",reuseaddr"), scope.logs()));
        QemuGuest guest = scope.track(QemuGuest.start("qemu", sock, 1, false, "jvtest.mode=tap jvtest.ip="
                + ns.guestAddress() + "/24 jvtest.peer=" + peer + " jvtest.mib=1 jvtest.rxdelay=" + RX_DELAY_S,
                scope.logs()));

        guest.process().await(TXSUM, 0, QemuGuest.BOOT_TIMEOUT, old);
        int qemuMark = guest.process().mark();
        ProcessUnderTest fresh = serve("jvhost-new", sock, "--takeover");
        assertEquals(0, old.awaitExit(Duration.ofSeconds(60)), "the old jvhost exits 0 after the handover" + old.tail()
                + fresh.tail());
        assertFalse(RXSUM.matcher(guest.process().outputSince(0)).find(),
                "the guest's receiving stream ended before the handover: it did not cross it");
        fresh.await(RUNS_AGAIN, 0, Duration.ofSeconds(30), null);
        long gapMs = HotUpgradeIT.gapMs(old, fresh);

        String verdict = guest.awaitResult(fresh);
        String out = guest.process().outputSince(0);
        assertTrue(verdict.startsWith("PASS"), "guest reported " + verdict + guest.process().tail() + fresh.tail());
        assertEquals(0, sink.awaitExit(Duration.ofSeconds(30)), "socat receiving from the guest");
        assertEquals(find(TXSUM, out).group(1), md5(fromGuest), "what the guest sent arrived intact");
        Matcher rx = find(RXSUM, out);
        assertEquals(md5(toGuest), rx.group(1), "what the namespace sent arrived intact in the guest");
        Matcher said = QEMU_SAYS.matcher(guest.process().outputSince(qemuMark));
        if (said.find()) {
            throw new AssertionError("QEMU reported after the handover: " + said.group(1) + guest.process().tail());
        }
        assertFalse(fresh.outputSince(0).contains("front-end connected"), "QEMU connected anew" + fresh.tail());
        assertEquals(linkBefore, link(), "the TAP's index and carrier changes across the handover");
        System.out.println("UPGRADE-RESULT devices=1 front_end=qemu-net-tap tcp_md5_equal=true gap_ms=" + gapMs);
    }

    /**
     * The traffic gap as the guest sees it (issue 14's target), across a handover and then, for
     * comparison, across QEMU's reconnect path under the same guest. The guest on the loopback device
     * runs {@link GuestGapProbe}: a frame every {@value GuestGapProbe#INTERVAL_US} us, reflected, and the
     * longest time between two arrivals per window. Its baseline (the same guest, no handover, just
     * before) says how steady a TCG guest is on this machine. Then a handover; then the new jvhost is
     * killed (SIGKILL) and started again without {@code --takeover}, and QEMU ({@code reconnect=1})
     * connects and negotiates anew. The handover's gap is shorter than the reconnect's, it duplicates no
     * frame, and it loses at most what the guest's TX ring holds: none if the gap is shorter than the ring
     * lasts at the probe's rate (51 ms); a longer gap ends in a burst of a full TX ring for which the
     * reflector finds too few RX buffers (main fbb3117's 70 ms gap lost 14). A guest that itself stopped
     * for longer than its RX ring lasts loses frames at any back-end (TCG on a busy host does); the loss is
     * then not checked. The log-based gap ("paused" to "runs again",
     * {@link HotUpgradeIT}) is printed beside.
     */
    @Test
    void loopbackGuestAcrossAHandoverThenQemusReconnectPathForComparison() {
        Path sock = sockets.resolve("lo.sock");
        List<String> args = List.of("--device", "loopback:socket=" + sock, "--control", control.toString());
        ProcessUnderTest old = scope.track(ProcessUnderTest.start("jvhost-old", Serve.command(Serve.ON_BACK_END_CPU, args),
                scope.logs()));
        Peers.awaitNewFile(control.resolveSibling("control.sock.handover"), null, Duration.ofSeconds(30), old);
        QemuGuest guest = scope.track(QemuGuest.start("qemu", sock, 1, false, GuestGapProbe.GUEST_ARGS, scope.logs()));
        GuestGapProbe probe = new GuestGapProbe(guest);
        probe.awaitReceivedAbove(0, 0, QemuGuest.BOOT_TIMEOUT, old);
        int baselineFrom = guest.process().mark();
        probe.awaitWindows(Duration.ofSeconds(3), old);

        int handoverFrom = guest.process().mark();
        long received = probe.windowsSince(baselineFrom).get(probe.windowsSince(baselineFrom).size() - 1).recv();
        ProcessUnderTest fresh = scope.track(ProcessUnderTest.start("jvhost-new",
                Serve.command(Serve.ON_BACK_END_CPU, plus(args, "--takeover")), scope.logs()));
        assertEquals(0, old.awaitExit(Duration.ofSeconds(60)), "the old jvhost exits 0" + old.tail() + fresh.tail());
        fresh.await(RUNS_AGAIN, 0, Duration.ofSeconds(30), null);
        long logGapMs = HotUpgradeIT.gapMs(old, fresh);
        received = probe.awaitReceivedAbove(received, handoverFrom, Duration.ofSeconds(30), fresh);
        probe.awaitWindows(GuestGapProbe.LOSS_DELAY, fresh);
        assertFalse(fresh.outputSince(0).contains("front-end connected"), "QEMU connected anew" + fresh.tail());

        int reconnectFrom = guest.process().mark();
        Instant killed = Instant.now();
        fresh.kill();
        ProcessUnderTest restarted = scope.track(ProcessUnderTest.start("jvhost-restarted",
                Serve.command(Serve.ON_BACK_END_CPU, args), scope.logs()));
        Matcher connected = restarted.await(CONNECTED, 0, Duration.ofSeconds(30), guest.process());
        long reconnectLogMs = Duration.between(killed, Instant.parse(connected.group(1))).toMillis();
        probe.awaitReceivedAbove(received, reconnectFrom, Duration.ofSeconds(30), restarted);
        probe.awaitWindows(GuestGapProbe.LOSS_DELAY, restarted);
        int end = guest.process().mark();

        GuestGapProbe.Span baseline = probe.span(baselineFrom, handoverFrom);
        GuestGapProbe.Span handover = probe.span(handoverFrom, reconnectFrom);
        GuestGapProbe.Span reconnect = probe.span(reconnectFrom, end);
        System.out.println("UPGRADE-RESULT devices=1 front_end=qemu-loopback-guest " + handover.format("handover") + " "
                + baseline.format("baseline") + " " + reconnect.format("reconnect") + " handover_log_gap_ms=" + logGapMs
                + " reconnect_connected_after_ms=" + reconnectLogMs);
        if (!handover.guestOverranItsRing(RING) && !baseline.guestOverranItsRing(RING)) {
            assertTrue(handover.lost() <= RING, handover.lost() + " frames lost across the handover, as the guest "
                    + "counts them: more than its TX ring holds" + guest.process().tail());
        }
        assertEquals(0, handover.dup(), "frames the guest got back twice across the handover" + guest.process().tail());
        assertTrue(handover.netGapUs() < reconnect.netGapUs(), "the guest's gap across the handover ("
                + handover.netGapUs() + " us) is not shorter than across QEMU's reconnect (" + reconnect.netGapUs() + " us)");
    }

    private static List<String> plus(List<String> a, String more) {
        List<String> all = new ArrayList<>(a);
        all.add(more);
        return all;
    }

    /** Rounds of 256 KiB writes (fsync), each read back whole with caches dropped; then the md5 of the area. */
    private static final String BLK_INIT = String.join("\n",
            "#!/bin/busybox sh",
            "/bin/busybox --install -s /bin",
            "export PATH=/bin:/sbin",
            "mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev 2>/dev/null",
            "say() { echo \"JVTEST $*\"; }",
            "fail() { say \"FAIL $*\"; sync; poweroff -f; sleep 5; }",
            "for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk; do",
            "  insmod /lib/modules/$m.ko 2>/dev/null",
            "done",
            "i=0; while [ ! -e /sys/block/vda/size ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done",
            "[ -e /sys/block/vda/size ] || fail \"no /dev/vda\"",
            "dd if=/dev/zero of=/tmp/e bs=4096 count=1024 2>/dev/null",
            "r=0",
            "while [ $r -lt " + BLK_ROUNDS + " ]; do",
            "  dd if=/dev/urandom of=/tmp/p bs=4096 count=64 2>/dev/null",
            "  slot=$((r % 16))",
            "  dd if=/tmp/p of=/dev/vda bs=4096 seek=$((slot * 64)) conv=fsync 2>/tmp/dd || fail \"round $r: write: $(cat /tmp/dd)\"",
            "  dd if=/tmp/p of=/tmp/e bs=4096 seek=$((slot * 64)) conv=notrunc 2>/dev/null",
            "  echo 3 > /proc/sys/vm/drop_caches",
            "  dd if=/dev/vda of=/tmp/q bs=4096 count=1024 2>/dev/null || fail \"round $r: read back\"",
            "  cmp /tmp/e /tmp/q > /dev/null || fail \"round $r: read back differs\"",
            "  say \"ROUND $r\"",
            "  r=$((r + 1))",
            "done",
            "say \"PASS $(md5sum < /tmp/e | cut -d' ' -f1) rounds=$r\"",
            "sync; poweroff -f",
            "");

    /**
     * The blk device (devices-blk) under a guest's writes across a handover. It does not save a state, and
     * its connection holds an inflight region and a back-end channel, which a handover does not carry: the
     * old process says so, its front-end is disconnected and QEMU ({@code reconnect=1}) connects to the new
     * process on the listening socket handed over, where its I/O carries on. Every round the guest read
     * back whole is what it wrote, and so is the file at the end.
     */
    @Test
    void blkIsDisconnectedWithALogLineAndItsGuestCarriesOnWithTheNewProcess() throws Exception {
        Path sock = sockets.resolve("blk.sock");
        Path image = sockets.resolve("disk.img");
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(8L << 20);
        }
        List<String> args = List.of("--device", "blk:socket=" + sock + ",path=" + image, "--control", control.toString());
        ProcessUnderTest old = scope.track(ProcessUnderTest.start("jvhost-old", Serve.command(Serve.ON_BACK_END_CPU, args),
                scope.logs()));
        Peers.awaitNewFile(control.resolveSibling("control.sock.handover"), null, Duration.ofSeconds(30), old);
        ProcessUnderTest qemu = InflightBlkIT.startQemu(scope, sock, InflightBlkIT.initramfs(scope, BLK_INIT));
        qemu.await(Pattern.compile("JVTEST ROUND 2\\r?\\n"), 0, QemuGuest.BOOT_TIMEOUT, old);

        ProcessUnderTest fresh = scope.track(ProcessUnderTest.start("jvhost-new",
                Serve.command(Serve.ON_BACK_END_CPU, plus(args, "--takeover")), scope.logs()));
        assertEquals(0, old.awaitExit(Duration.ofSeconds(60)), "the old jvhost exits 0" + old.tail() + fresh.tail());
        assertTrue(old.outputSince(0).contains("is not handed over yet; its front-end is disconnected")
                || old.outputSince(0).contains("does not save its state for a hot upgrade"),
                "the old jvhost says why the blk connection is not handed over" + old.tail());
        fresh.await(Pattern.compile("front-end connected"), 0, Duration.ofSeconds(30), qemu);
        Matcher pass = qemu.await(Pattern.compile("JVTEST (PASS|FAIL)([^\\r\\n]*)\\r?\\n"), 0,
                Duration.ofSeconds(120), fresh);
        assertEquals("PASS", pass.group(1), "guest: " + pass.group(0) + qemu.tail());
        byte[] area = java.util.Arrays.copyOf(Files.readAllBytes(image), 4 << 20);
        String diskSum;
        try {
            diskSum = HexFormat.of().formatHex(MessageDigest.getInstance("MD5").digest(area));
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
        assertEquals(pass.group(2).strip().split(" ")[0], diskSum, "the file holds what the guest wrote");
        System.out.println("UPGRADE-RESULT blk reconnected guest " + pass.group(2).strip());
    }

    /** The TAP's ifindex and carrier_changes, as the namespace's sysfs shows them. */
    private String link() {
        return "ifindex " + ns.exec("cat", "/sys/class/net/" + TAP + "/ifindex").trim() + ", carrier_changes "
                + ns.exec("cat", "/sys/class/net/" + TAP + "/carrier_changes").trim();
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
