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
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.jvhost.host.control.ControlClient;
import org.jvhost.host.control.Json;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Live migration of a QEMU guest between two reflecting devices (vhost-user "Migration"): the source
 * QEMU migrates over a Unix socket, under the guest's traffic, to a destination QEMU started with
 * {@code -incoming} on a second device; QEMU refuses to even start unless the back-end offers
 * VHOST_F_LOG_ALL and LOG_SHMFD. The guest reports its eth0 rx_packets periodically on its serial
 * console, which continues on the destination's. Both guests run at once: two TCG guests are the
 * most this 2-CPU machine kind carries.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class MigrationIT {
    /** One frame every 0.2 s: the guest dirties pages the whole time, through the device too. */
    private static final String PERIODIC = "jvtest.mode=periodic jvtest.interval=0.2";
    private static final Duration MIGRATION_TIMEOUT = Duration.ofSeconds(90);
    private static final Pattern RXSUM = Pattern.compile("JVTEST RXSUM ([0-9a-f]{32}) bytes=(\\d+)");
    private static final int STREAM_BYTES = 64 << 20;
    /**
     * The stream test's NIC: without mergeable RX buffers Linux's virtio_net posts "big packet" chains of
     * whole pages that only the device writes (the skb takes them as frags), so a page jvhost wrote and
     * did not log stays stale on the destination. With mergeable buffers the guest itself writes
     * skb_shared_info into each buffer's page, which QEMU then sends again anyway and hides the miss.
     */
    private static final String STREAM_NIC = ",mrg_rxbuf=off";
    private static final Pattern ANNOUNCED = Pattern.compile("guest " + QemuGuest.GUEST_MAC + " announced after a migration");
    /** The net device wrote its RARP for the guest into the destination's TAP (SEND_RARP). */
    private static final Pattern RARP_ON_DESTINATION_TAP = Pattern.compile("announced guest " + QemuGuest.GUEST_MAC
            + " on jvtapb \\(RARP\\)");

    @RegisterExtension
    final PeerScope scope = new PeerScope();
    private final Backend backend = Backend.selected();
    private final boolean jvhost = backend instanceof JvhostBackend;
    private ProcessUnderTest back;
    private QemuGuest source;
    private Qmp sourceQmp;

    @BeforeEach
    void startSource() {
        Peers.assumeInstalled(Peers.QEMU, "qemu-system-x86");
        backend.assumeAvailable();
    }

    /**
     * Issue 10, proof 1: one jvhost serves both devices; the migration completes, and the guest's
     * reflect traffic passes on the destination, whose device was told to announce the guest.
     */
    @Test
    void aGuestUnderTrafficMigratesToASecondDeviceOfTheSameJvhost() throws Exception {
        Path src = scope.sockets().resolve("src.sock");
        Path dst = scope.sockets().resolve("dst.sock");
        back = scope.track(startBackEnd(src, dst));
        migrateUnderTraffic(src, dst, back);
    }

    /**
     * Issue 10, proof 3: the same between two jvhost processes, the source host's and the destination
     * host's.
     */
    @Test
    void aGuestUnderTrafficMigratesBetweenTwoJvhostProcesses() throws Exception {
        Assumptions.assumeTrue(jvhost, "the reference runs one process per device in every test");
        Path src = scope.sockets().resolve("src.sock");
        Path dst = scope.sockets().resolve("dst.sock");
        back = scope.track(backend.start("jvhost-source", src, 1, Backend.Role.LISTEN, scope.logs()));
        ProcessUnderTest destinationHost = scope.track(backend.start("jvhost-destination", dst, 1,
                Backend.Role.LISTEN, scope.logs()));
        migrateUnderTraffic(src, dst, destinationHost);
    }

    /**
     * Boots the source on {@code src}, migrates it to a destination on {@code dst} (served by
     * {@code destinationHost}) and checks the reflected traffic goes on there.
     */
    private void migrateUnderTraffic(Path src, Path dst, ProcessUnderTest destinationHost) throws Exception {
        long flowing = bootSourceUnderTraffic(src);

        QemuGuest destination = startDestination(dst);
        long started = System.nanoTime();
        sourceQmp.execute("{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"unix:" + migrationSocket() + "\"}}");
        String done = sourceQmp.awaitMigration(MIGRATION_TIMEOUT, "completed");
        System.out.printf("MIGRATION %s: completed in %d ms, downtime %d ms (QMP)%n", backend.name(),
                TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started), Qmp.downtimeMs(done));

        long first = destination.nextRxPackets(0, Duration.ofSeconds(30), destinationHost);
        assertTrue(first >= flowing, "the guest's counters came along: " + first + " after " + flowing);
        long later = destination.awaitRxAbove(first + 5, Duration.ofSeconds(30), destinationHost);
        assertTrue(later > first);
        if (jvhost) {
            destinationHost.await(ANNOUNCED, 0, Duration.ofSeconds(10));
        }
    }

    /**
     * Issue 10, proof 4: a guest with two queue pairs (two vCPUs, one frame from each per period, so both
     * transmit queues carry traffic) migrates under traffic on both. On the destination the guest's
     * per-queue rx counters (virtio_net's ethtool statistics, which came along in guest memory) keep rising
     * on both queues, and jvhost's destination device reflected frames on both pairs.
     */
    @Test
    void aGuestWithTwoQueuePairsMigratesUnderTrafficOnBoth() throws Exception {
        Path src = scope.sockets().resolve("src.sock");
        Path dst = scope.sockets().resolve("dst.sock");
        back = scope.track(startBackEnd(src, dst, 2));
        bootSourceUnderTraffic(src, 2);
        long[] before = source.awaitRxQueuesAbove(new long[] {0, 0}, Duration.ofSeconds(30), back);

        QemuGuest destination = startDestination(dst, 2, PERIODIC, "");
        sourceQmp.execute("{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"unix:" + migrationSocket() + "\"}}");
        String done = sourceQmp.awaitMigration(MIGRATION_TIMEOUT, "completed");
        System.out.printf("MIGRATION %s with 2 queue pairs: downtime %d ms (QMP)%n", backend.name(), Qmp.downtimeMs(done));

        long[] first = destination.awaitRxQueuesAbove(before, Duration.ofSeconds(30), back);
        destination.awaitRxQueuesAbove(first, Duration.ofSeconds(30), back);
        if (jvhost) {
            Map<?, ?> device = deviceCounters("loopback@" + dst);
            for (int pair = 0; pair < 2; pair++) {
                assertTrue(queueCounter(device, 2 * pair, "rx_frames") > 0 && queueCounter(device, 2 * pair + 1, "tx_frames") > 0,
                        "the destination device reflected frames on queue pair " + pair + ": " + device.get("queues"));
            }
        }
    }

    /** The {@code counters} of device {@code name}, from jvhost's control API. */
    private Map<?, ?> deviceCounters(String name) throws IOException {
        Map<?, ?> answer = (Map<?, ?>) Json.parse(ControlClient.request(control(), "counters " + name));
        assertEquals(true, answer.get("ok"), String.valueOf(answer));
        return ((List<?>) answer.get("devices")).stream().map(d -> (Map<?, ?>) d).filter(d -> name.equals(d.get("name")))
                .findFirst().orElseThrow(() -> new AssertionError("no device " + name + " in " + answer));
    }

    private static long queueCounter(Map<?, ?> device, int queue, String name) {
        Map<?, ?> q = (Map<?, ?>) ((List<?>) device.get("queues")).get(queue);
        return (Long) ((Map<?, ?>) q.get("counters")).get(name);
    }

    /**
     * Issue 10, proof 5: a migration cancelled while it copies memory. The source guest keeps running
     * and receiving, and jvhost lets go of the log QEMU shared for the migration: no mapping and no fd
     * of it remain.
     */
    @Test
    void aCancelledMigrationLeavesTheSourceRunningAndNoLogBehind() throws Exception {
        Path src = scope.sockets().resolve("src.sock");
        Path dst = scope.sockets().resolve("dst.sock");
        back = scope.track(startBackEnd(src, dst));
        bootSourceUnderTraffic(src);
        startDestination(dst);

        // 1 MiB/s: the 256 MiB guest cannot finish before the cancel
        sourceQmp.execute("{\"execute\":\"migrate-set-parameters\",\"arguments\":{\"max-bandwidth\":1048576}}");
        sourceQmp.execute("{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"unix:" + migrationSocket() + "\"}}");
        sourceQmp.awaitMigration(Duration.ofSeconds(30), "active");
        if (jvhost) {
            awaitLogReferences(true);
        }
        sourceQmp.execute("{\"execute\":\"migrate_cancel\"}");
        sourceQmp.awaitMigration(Duration.ofSeconds(30), "cancelled");

        long now = source.nextRxPackets(source.process().mark(), Duration.ofSeconds(30), back);
        source.awaitRxAbove(now + 5, Duration.ofSeconds(30), back);
        if (jvhost) {
            awaitLogReferences(false);
        }
    }

    /**
     * Issue 10, proof 2: the guest, on a {@code net} device whose TAP shares a Linux bridge with the
     * destination device's TAP, receives a 64 MiB TCP stream from the namespace (checksum offload on, so
     * a stale page cannot hide behind a TCP checksum) while it migrates. The stream is throttled to
     * 40 Mbit/s so that it spans the switch-over; the connection survives, and what the guest received on
     * the destination has the md5 of what was sent. The guest also pings the namespace every 20 ms, and
     * {@link TapGapMonitor} records the traffic gap it sees: from the last frame the source's TAP gave it
     * to the first from the destination's.
     *
     * <p>The proof fails without data logging: with SplitQueue's logging of written chain bytes commented
     * out (an experiment, 2026-12-06), the md5 on the destination differed. It did not before the guest's
     * reader waited ({@code jvtest.rxdelay}) and the NIC went without mergeable buffers ({@link #STREAM_NIC}):
     * the guest consumed the stream too soon, and wrote into the buffers' pages itself.
     *
     * <p>Earlier on 2026-12-06, 2 of 5 runs failed on the destination guest's kernel right after the
     * switch-over (a list_add corruption panic, or a soft lockup of nc); the cause was not found. The next
     * 5 runs (3 as before, 2 in this form, QMP downtime 11-80 ms) all passed. A failure here: read the
     * destination's console log in it-logs first.
     */
    @Test
    void aGuestReceivingAStreamThroughABridgeMigratesWithoutLosingAByte() throws Exception {
        Assumptions.assumeTrue(jvhost, "the net device and its TAP are jvhost's");
        Peers.assumeInstalled("/usr/bin/socat", "socat");
        NetNamespace ns = scope.track(NetNamespace.create());
        Path src = scope.sockets().resolve("src.sock");
        Path dst = scope.sockets().resolve("dst.sock");
        List<String> serve = Serve.command(Serve.ON_BACK_END_CPU, List.of("--device", "net:socket=" + src + ",tap=jvtapa",
                "--device", "net:socket=" + dst + ",tap=jvtapb"));
        back = scope.track(ProcessUnderTest.start("jvhost", ns.inside(serve.toArray(String[]::new)), scope.logs()));
        Peers.awaitNewFile(src, null, Duration.ofSeconds(30), back);
        Peers.awaitNewFile(dst, null, Duration.ofSeconds(30), back);
        bridge(ns, "jvtapa", "jvtapb");

        String peer = ns.peerAddress();
        Path toGuest = scope.sockets().resolve("to-guest.bin");
        byte[] stream = new byte[STREAM_BYTES];
        new Random(STREAM_BYTES).nextBytes(stream);
        Files.write(toGuest, stream);
        ProcessUnderTest sink = scope.track(ProcessUnderTest.start("socat-5001", ns.inside("timeout", "170", "socat", "-u",
                "TCP-LISTEN:5001,bind=" + peer + ",reuseaddr", "CREATE:" + scope.sockets().resolve("from-guest.bin")),
                scope.logs()));
        scope.track(ProcessUnderTest.start("socat-5002", ns.inside("timeout", "170", "socat", "-u", "OPEN:" + toGuest,
                "TCP-LISTEN:5002,bind=" + peer + ",reuseaddr"), scope.logs()));

        // the guest sends 1 MiB to :5001, then reads everything :5002 sends
        // the guest reads nothing of the stream for its first 8 s: what jvhost writes into it meanwhile waits
        // in guest memory, unread, through the migration
        // and pings the peer every 20 ms throughout, so that frames move both ways even while TCP waits
        String guestArgs = "jvtest.mode=tap jvtest.ip=" + ns.guestAddress() + "/24 jvtest.peer=" + peer
                + " jvtest.mib=1 jvtest.rxdelay=8 jvtest.pingevery=0.02";
        source = scope.track(QemuGuest.start("source", src, 1, false, guestArgs, scope.logs(), STREAM_NIC, QemuGuest.MEMFD,
                List.of("-qmp", "unix:" + scope.sockets().resolve("qmp-source") + ",server=on,wait=off")));
        sourceQmp = scope.track(Qmp.connect(scope.sockets().resolve("qmp-source"), Duration.ofSeconds(30), source.process()));
        QemuGuest destination = startDestination(dst, 1, guestArgs, STREAM_NIC);
        assertEquals(0, sink.awaitExit(QemuGuest.BOOT_TIMEOUT), "the guest's 1 MiB reached :5001: the stream to it starts"
                + source.process().tail() + back.tail());

        TapGapMonitor gaps = scope.track(TapGapMonitor.start(ns, 170, scope.logs(), "jvtapa", "jvtapb"));
        long started = System.currentTimeMillis();
        sourceQmp.execute("{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"unix:" + migrationSocket() + "\"}}");
        String done = sourceQmp.awaitMigration(MIGRATION_TIMEOUT, "completed");
        long completed = System.currentTimeMillis();
        String verdict = destination.awaitResult(back);
        long pause = gaps.switchOverGap(true, 0, 1);
        System.out.printf("MIGRATION %s over a bridge, receiving a TCP stream: downtime %d ms (QMP); from the source's"
                + " TAP to the destination's, frames to the guest paused %d ms, from it %d ms (its RARP included);"
                + " longest pause to the guest from the migrate command to 10 s after its completion %d ms%n", backend.name(), Qmp.downtimeMs(done),
                pause, gaps.switchOverGap(false, 0, 1), gaps.longestGap(true, started, completed + 10_000));
        assertTrue(pause >= 0, "no frame reached the guest through the destination's TAP after the source's stopped");
        back.await(RARP_ON_DESTINATION_TAP, 0, Duration.ofSeconds(10));
        assertFalse(source.process().outputSince(0).contains("RXSUM"), "the stream ended before the switch-over");
        Matcher rx = RXSUM.matcher(destination.process().outputSince(0));
        assertTrue(rx.find(), "the guest reported no RXSUM on the destination: " + verdict + destination.process().tail());
        assertEquals(STREAM_BYTES, Long.parseLong(rx.group(2)), "bytes the guest received");
        assertEquals(md5(stream), rx.group(1), "what the guest received is what was sent");
        assertTrue(verdict.startsWith("PASS"), verdict);
    }

    /** Puts the TAPs in one bridge that has the peer address, and throttles what the namespace sends through it. */
    private static void bridge(NetNamespace ns, String... taps) {
        ns.exec("ip", "link", "add", "jvbr0", "type", "bridge");
        for (String tap : taps) {
            ns.exec("ip", "link", "set", tap, "master", "jvbr0");
            ns.exec("ip", "link", "set", tap, "up");
        }
        ns.exec("ip", "addr", "add", ns.peerAddress() + "/24", "dev", "jvbr0");
        ns.exec("ip", "link", "set", "jvbr0", "up");
        // 64 MiB at 40 Mbit/s take about 13 s; the burst holds a whole 64 KiB GSO frame
        ns.exec("tc", "qdisc", "add", "dev", "jvbr0", "root", "tbf", "rate", "40mbit", "burst", "256kb", "latency", "1s");
    }

    private static String md5(byte[] data) throws NoSuchAlgorithmException {
        return HexFormat.of().formatHex(MessageDigest.getInstance("MD5").digest(data));
    }

    /** jvhost with both devices, or (the DPDK reference) one back-end process per device. */
    private ProcessUnderTest startBackEnd(Path src, Path dst) {
        return startBackEnd(src, dst, 1);
    }

    /** As above, with {@code queues} queue pairs per device; jvhost serves its control API on {@link #control()}. */
    private ProcessUnderTest startBackEnd(Path src, Path dst, int queues) {
        if (!jvhost) {
            scope.track(backend.start(backend.name() + "-dst", dst, queues, Backend.Role.LISTEN, scope.logs()));
            return backend.start(backend.name() + "-src", src, queues, Backend.Role.LISTEN, scope.logs());
        }
        ProcessUnderTest p = ProcessUnderTest.start("jvhost", Serve.command(Serve.ON_BACK_END_CPU,
                List.of("--control", control().toString(), "--device", "loopback:socket=" + src + ",queues=" + queues,
                        "--device", "loopback:socket=" + dst + ",queues=" + queues)), scope.logs());
        try {
            Peers.awaitNewFile(src, null, Duration.ofSeconds(30), p);
            Peers.awaitNewFile(dst, null, Duration.ofSeconds(30), p);
            return p;
        } catch (RuntimeException | Error e) {
            p.close();
            throw e;
        }
    }

    /** Boots the source guest on {@code src} and waits for its reflected traffic; returns its rx_packets. */
    private long bootSourceUnderTraffic(Path src) {
        return bootSourceUnderTraffic(src, 1);
    }

    private long bootSourceUnderTraffic(Path src, int queues) {
        source = scope.track(QemuGuest.start("source", src, queues, false, PERIODIC, scope.logs(), "", QemuGuest.MEMFD,
                List.of("-qmp", "unix:" + scope.sockets().resolve("qmp-source") + ",server=on,wait=off")));
        sourceQmp = scope.track(Qmp.connect(scope.sockets().resolve("qmp-source"), Duration.ofSeconds(30), source.process()));
        long before = source.nextRxPackets(0, QemuGuest.BOOT_TIMEOUT, back);
        return source.awaitRxAbove(before + 3, Duration.ofSeconds(30), back);
    }

    /** The destination QEMU: the source's machine on device {@code dst}, waiting for the migration. */
    private QemuGuest startDestination(Path dst) {
        return startDestination(dst, 1, PERIODIC, "");
    }

    private QemuGuest startDestination(Path dst, int queues, String guestArgs, String nicExtra) {
        QemuGuest destination = scope.track(QemuGuest.start("destination", dst, queues, false, guestArgs, scope.logs(), nicExtra,
                QemuGuest.MEMFD, List.of("-incoming", "unix:" + migrationSocket())));
        Peers.awaitNewFile(migrationSocket(), null, Duration.ofSeconds(30), destination.process());
        return destination;
    }

    private Path control() {
        return scope.sockets().resolve("control.sock");
    }

    private Path migrationSocket() {
        return scope.sockets().resolve("migration.sock");
    }

    /**
     * Waits until jvhost holds ({@code held}) or no longer holds a mapping or an fd of QEMU's dirty log
     * (a memfd QEMU names "vhost-log").
     */
    private void awaitLogReferences(boolean held) {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (logReferences(back.pid()) > 0 != held) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("jvhost " + (held ? "never mapped" : "still holds") + " the migration log: "
                        + logReferences(back.pid()) + " mappings and fds" + back.tail());
            }
            Peers.sleep(Duration.ofMillis(100));
        }
    }

    private static long logReferences(long pid) {
        try (Stream<String> maps = Files.lines(Path.of("/proc/" + pid + "/maps"));
             Stream<Path> fds = Files.list(Path.of("/proc/" + pid + "/fd"))) {
            long mapped = maps.filter(l -> l.contains("memfd:vhost-log")).count();
            long open = fds.filter(fd -> link(fd).contains("memfd:vhost-log")).count();
            return mapped + open;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static String link(Path fd) {
        try {
            return Files.readSymbolicLink(fd).toString();
        } catch (IOException e) {
            return ""; // closed meanwhile
        }
    }
}
