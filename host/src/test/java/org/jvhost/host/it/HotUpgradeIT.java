package org.jvhost.host.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.jvhost.host.it.TestpmdFrontEnd.Interval;
import org.jvhost.host.it.TestpmdFrontEnd.PortStats;
import org.jvhost.host.plugin.PluginJars;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Hot upgrade (issue 14): a second {@code jvhost serve --takeover} with the same arguments takes every
 * device over from the running one, which exits 0, while front-ends keep going without a reconnect.
 * The traffic gap is read from the two processes' logs: from the old one's "paused" line to the new
 * one's "runs again" line for the connection (the rings stand still in between). Each test prints one
 * {@code UPGRADE-RESULT} line for BENCHMARKS.md.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class HotUpgradeIT {
    private static final long MIN_FRAMES = 10_000;
    /** {@code start tx_first 4}: 4 bursts of 32 frames circulate, the most that can be in flight. */
    private static final int IN_FLIGHT = 128;
    private static final Pattern PAUSED = Pattern.compile("(\\S+) \\[[^]]+\\] INFO Handover - paused (\\d+) device");
    private static final Pattern RUNS_AGAIN = Pattern.compile(
            "(\\S+) \\[[^]]+\\] INFO Connection - .* runs again(?: \\(\\d+ us to restore it; its last ring started (\\d+) us before)?");
    private static final Pattern HANDED_OVER = Pattern.compile("handed (\\d+) device\\(s\\) over to pid");

    @RegisterExtension
    final PeerScope scope = new PeerScope();
    private Path sockets;
    private Path control;

    @BeforeEach
    void setUp() {
        Peers.assumeInstalled(Peers.TASKSET, "util-linux");
        sockets = scope.sockets();
        control = sockets.resolve("control.sock");
    }

    /** {@code java [jvmArgs] -jar jvhost.jar serve args} on the back-end's CPU. */
    private ProcessUnderTest serve(String name, List<String> jvmArgs, List<String> args) {
        List<String> cmd = new ArrayList<>(Serve.ON_BACK_END_CPU);
        cmd.add(Serve.java());
        cmd.addAll(jvmArgs);
        cmd.addAll(List.of("-jar", Serve.jar().toString(), "serve"));
        cmd.addAll(args);
        return scope.track(ProcessUnderTest.start(name, cmd, scope.logs()));
    }

    private List<String> loopbackArgs(Path sock, String... more) {
        List<String> a = new ArrayList<>(List.of("--device", "loopback:socket=" + sock, "--control", control.toString()));
        a.addAll(List.of(more));
        return a;
    }

    /**
     * Proof 1: testpmd's {@code io} round trip through the loopback device runs across the handover. The
     * frames keep flowing afterwards, no frame is lost (at the end no more than the 128 circulating ones
     * are missing), the old process exits 0, and the device's counters carry on in the new one.
     */
    @Test
    void testpmdRoundTripCrossesTheHandover() {
        roundTripCrossesTheHandover("");
    }

    /**
     * The same over packed rings ({@code packed_vq=1}, issue 15): the new process starts each ring from
     * the positions and wrap counters where the old one paused it.
     */
    @Test
    void testpmdRoundTripOverPackedRingsCrossesTheHandover() {
        roundTripCrossesTheHandover(",packed_vq=1");
    }

    private void roundTripCrossesTheHandover(String vdevOptions) {
        Peers.assumeInstalled(Peers.TESTPMD, "dpdk-dev");
        Path sock = sockets.resolve("lo.sock");
        ProcessUnderTest old = serve("jvhost-old", List.of(), loopbackArgs(sock));
        Peers.awaitNewFile(handoverSocket(), null, Duration.ofSeconds(30), old);
        TestpmdFrontEnd front = scope.track(TestpmdFrontEnd.start("testpmd", sock, 1, "io", false, scope.logs(),
                TestpmdFrontEnd.NO_HUGE, vdevOptions));
        front.startRoundTrip();
        front.sample(Duration.ofSeconds(1)).assertFlowing(MIN_FRAMES, "before the handover; ", old);

        ProcessUnderTest fresh = serve("jvhost-new", List.of(), loopbackArgs(sock, "--takeover"));
        assertEquals(0, old.awaitExit(Duration.ofSeconds(60)), "the old jvhost exits 0 after the handover" + old.tail()
                + fresh.tail());
        fresh.await(RUNS_AGAIN, 0, Duration.ofSeconds(30), null);
        Interval after = front.sample(Duration.ofSeconds(2));
        after.assertFlowing(MIN_FRAMES, "after the handover; ", fresh);
        if (!vdevOptions.isEmpty()) {
            String log = fresh.outputSince(0);
            assertTrue(log.contains("queue 0 starts as a packed ring") && log.contains("queue 1 starts as a packed ring"),
                    "the new jvhost did not start both rings packed" + fresh.tail());
        }
        front.stop();
        PortStats end = front.portStats();
        long missing = end.txPackets() - end.rxPackets();
        long gapMs = gapMs(old, fresh, false);

        System.out.println("UPGRADE-RESULT devices=1 front_end=testpmd" + (vdevOptions.isEmpty() ? "" : "(packed)")
                + " frames_sent=" + end.txPackets() + " missing_at_end=" + missing + " gap_ms=" + gapMs
                + " ring_gap_ms=" + gapMs(old, fresh, true));
        assertTrue(missing >= 0 && missing <= IN_FLIGHT, missing + " frames lost across the handover (at most "
                + IN_FLIGHT + " circulate)" + fresh.tail());
        assertTrue(fresh.isAlive(), "the new jvhost serves" + fresh.tail());
        assertTrue(!front.process().outputSince(0).contains("disconnect"),
                "testpmd saw a disconnect" + front.process().tail());
    }

    /**
     * Proof 4: the successor is killed (SIGKILL) after the old process paused everything and sent it,
     * before it acknowledged. The old process resumes its rings, keeps serving the same connection
     * (testpmd's round trip flows again, nothing lost), holds as many fds as before, and a second
     * takeover then succeeds.
     */
    @Test
    void aSuccessorKilledMidHandoverLeavesTheOldOneServing() {
        Peers.assumeInstalled(Peers.TESTPMD, "dpdk-dev");
        Path sock = sockets.resolve("lo.sock");
        ProcessUnderTest old = serve("jvhost-old", List.of(), loopbackArgs(sock));
        Peers.awaitNewFile(handoverSocket(), null, Duration.ofSeconds(30), old);
        TestpmdFrontEnd front = scope.track(TestpmdFrontEnd.start("testpmd", sock, 1, "io", false, scope.logs()));
        front.startRoundTrip();
        front.sample(Duration.ofSeconds(1)).assertFlowing(MIN_FRAMES, "before the takeover; ", old);
        int fdsBefore = ProcessResources.snapshot(old.pid()).fds();

        int mark = old.mark();
        ProcessUnderTest doomed = serve("jvhost-doomed", List.of("-Djvhost.takeover.hold-ms=30000"),
                loopbackArgs(sock, "--takeover"));
        old.await(PAUSED, mark, Duration.ofSeconds(60), doomed);
        doomed.await(Pattern.compile("holding the takeover"), 0, Duration.ofSeconds(30), null);
        doomed.kill();
        old.await(Pattern.compile("device\\(s\\) resumed, still serving"), mark, Duration.ofSeconds(10));

        front.sample(Duration.ofSeconds(2)).assertFlowing(MIN_FRAMES, "after the failed takeover; ", old);
        int fdsAfter = ProcessResources.snapshot(old.pid()).fds();
        assertEquals(fdsBefore, fdsAfter, "fds of the old jvhost before and after the failed takeover");

        ProcessUnderTest fresh = serve("jvhost-new", List.of(), loopbackArgs(sock, "--takeover"));
        assertEquals(0, old.awaitExit(Duration.ofSeconds(60)), "the old jvhost hands over on the second try"
                + old.tail() + fresh.tail());
        fresh.await(RUNS_AGAIN, 0, Duration.ofSeconds(30), null);
        front.sample(Duration.ofSeconds(2)).assertFlowing(MIN_FRAMES, "after the second takeover; ", fresh);
        front.stop();
        PortStats end = front.portStats();
        long missing = end.txPackets() - end.rxPackets();
        System.out.println("UPGRADE-RESULT failed_takeover fds_before=" + fdsBefore + " fds_after=" + fdsAfter
                + " missing_at_end=" + missing);
        assertTrue(missing >= 0 && missing <= IN_FLIGHT, missing + " frames lost" + fresh.tail());
    }

    /**
     * Proof 3: 1,000 loopback devices (system property {@code jvhost.upgrade.devices}), each with a
     * connected front-end in this JVM (memory table, one enabled ring with kick and call eventfds),
     * handed over at once. Every front-end still answers the new process on its old connection, the new
     * process holds no more fds than the old one did, and once the front-ends leave it is back to the fds
     * the old one had before they came (no leak).
     */
    @Test
    void thousandConnectedDevicesAreHandedOver() throws Exception {
        int n = Integer.getInteger("jvhost.upgrade.devices", 1000);
        StringBuilder args = new StringBuilder("--workers 2\n--control " + control + "\n");
        List<Path> paths = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Path p = sockets.resolve("d" + i + ".sock");
            paths.add(p);
            args.append("--device loopback:socket=").append(p).append('\n');
        }
        Path argFile = sockets.resolve("serve.args");
        Files.writeString(argFile, args);
        ProcessUnderTest old = serve("jvhost-old", List.of(), List.of("@" + argFile));
        old.await(Pattern.compile("serving " + n + " device\\(s\\)"), 0, Duration.ofSeconds(120));
        Peers.awaitNewFile(handoverSocket(), null, Duration.ofSeconds(30), old);
        ProcessResources.Snapshot idle = ProcessResources.snapshot(old.pid());
        int fdsIdle = idle.fds();
        List<ScriptedFrontend> frontends = new ArrayList<>();
        for (Path p : paths) {
            frontends.add(scope.track(Serve.negotiate(p)));
        }
        int fdsConnected = ProcessResources.snapshot(old.pid()).fds();

        long t0 = System.nanoTime();
        ProcessUnderTest fresh = serve("jvhost-new", List.of(), List.of("@" + argFile, "--takeover"));
        assertEquals(0, old.awaitExit(Duration.ofSeconds(120)), "the old jvhost exits 0" + old.tail() + fresh.tail());
        long exitedMs = (System.nanoTime() - t0) / 1_000_000;
        Matcher handed = old.await(HANDED_OVER, 0, Duration.ofSeconds(1));
        assertEquals(n, Integer.parseInt(handed.group(1)), "devices handed over");
        awaitCount(fresh, RUNS_AGAIN, n, Duration.ofSeconds(60));
        long gapMs = gapMs(old, fresh);
        int fdsNew = ProcessResources.snapshot(fresh.pid()).fds();

        for (int i = 0; i < n; i += Math.max(1, n / 20)) {
            frontends.get(i).kick(0);
            assertTrue(frontends.get(i).getFeatures() != 0, "device " + i + " answers on its old connection");
        }
        for (ScriptedFrontend f : frontends) {
            f.close();
        }
        Duration settle = ProcessResources.awaitBaseline(fresh, new ProcessResources.Snapshot(fdsIdle + 8, List.of(),
                idle.sharedMappings()), Duration.ofSeconds(30));
        int fdsAfter = ProcessResources.snapshot(fresh.pid()).fds();

        String result = String.format("UPGRADE-RESULT devices=%d old_fds_idle=%d old_fds_connected=%d new_fds_connected=%d"
                + " new_fds_after_disconnect=%d gap_ms=%d ring_gap_ms=%d start_to_old_exit_ms=%d", n, fdsIdle,
                fdsConnected, fdsNew, fdsAfter, gapMs, gapMs(old, fresh, true), exitedMs);
        System.out.println(result);
        Files.writeString(Peers.targetDir().resolve("upgrade-" + n + ".txt"), result + "\n");
        assertTrue(fdsNew <= fdsConnected + 8, "the new jvhost holds " + fdsNew + " fds, the old one held "
                + fdsConnected);
        assertTrue(fdsNew >= fdsConnected - 8, "the new jvhost holds " + fdsNew + " fds, the old one held "
                + fdsConnected + ": connections were not all taken over");
        assertTrue(fdsAfter <= fdsIdle + 8, fdsAfter + " fds once every front-end left, " + fdsIdle
                + " before they came (settled after " + settle + ")");
    }

    /**
     * Proof 5: a plugin upgraded across a handover. The old process serves the {@code keeper} device from
     * plugin jar 1.0 (it counts kicks; state v1: the count), the new one from jar 2.0 (state v2 adds an
     * upgrade count; it reads v1 too). A front-end connected to the old one kicks 5 times, and once more
     * when the new one serves it on the same connection: the new version's counters go on from the old
     * one's count K (callbacks, not kicks: eventfd kicks coalesce and a polled queue is called back
     * between them), restored from a version 1 state.
     */
    @Test
    void aPluginUpgradedAcrossTheHandoverReadsTheOldVersionsState() throws Exception {
        Path v1 = PluginJars.build("keeper1", sockets.resolve("plugins-1.0/keeper.jar"), "1.0").getParent();
        Path v2 = PluginJars.build("keeper2", sockets.resolve("plugins-2.0/keeper.jar"), "2.0").getParent();
        Path sock = sockets.resolve("keeper.sock");
        List<String> args = List.of("--device", "keeper:socket=" + sock, "--control", control.toString());
        ProcessUnderTest old = serve("jvhost-old", List.of(), plus(List.of("--plugins", v1.toString()), args));
        Peers.awaitNewFile(handoverSocket(), null, Duration.ofSeconds(30), old);
        ScriptedFrontend fe = scope.track(Serve.negotiate(sock));
        for (int i = 0; i < 5; i++) {
            fe.kick(0);
            Peers.sleep(Duration.ofMillis(20));
        }
        long before = -1;
        for (long seen = 0; seen != before; ) { // settled: the same count twice
            before = seen;
            Peers.sleep(Duration.ofMillis(300));
            seen = kicks(awaitCounters(c -> kicks(c) >= 1, "plugin_version=1"));
        }
        long k = before;

        ProcessUnderTest fresh = serve("jvhost-new", List.of(),
                plus(List.of("--plugins", v2.toString()), plus(args, List.of("--takeover"))));
        assertEquals(0, old.awaitExit(Duration.ofSeconds(60)), "the old jvhost exits 0" + old.tail() + fresh.tail());
        fresh.await(RUNS_AGAIN, 0, Duration.ofSeconds(30), null);
        fe.kick(0);
        String after = awaitCounters(c -> kicks(c) > k, "plugin_version=2", "restored_from_version=1",
                "upgrades=1");
        assertTrue(fe.getFeatures() != 0, "the front-end's connection answers the new process");
        assertTrue(!fresh.outputSince(0).contains("front-end connected"), "the front-end connected anew" + fresh.tail());
        System.out.println("UPGRADE-RESULT plugin keeper 1.0 -> 2.0: kicks " + before + " before, "
                + after.lines().findFirst().orElse(""));
    }

    /**
     * {@code jvhost ctl upgrade} (for a systemd unit, or an operator): the running process starts its own
     * successor with its command line plus {@code --takeover}; ctl waits for the handover and says so; the
     * front-end's connection is answered by the successor. The successor is not this test's child, so it
     * is stopped here by its pid.
     */
    @Test
    void ctlUpgradeHasTheRunningProcessStartItsSuccessor() throws Exception {
        Path sock = sockets.resolve("lo.sock");
        ProcessUnderTest old = serve("jvhost-old", List.of(), loopbackArgs(sock));
        Peers.awaitNewFile(handoverSocket(), null, Duration.ofSeconds(30), old);
        ScriptedFrontend fe = scope.track(Serve.negotiate(sock));
        ProcessUnderTest ctl = scope.track(ProcessUnderTest.start("ctl-upgrade", List.of(Serve.java(), "-jar",
                Serve.jar().toString(), "ctl", "--control", control.toString(), "upgrade"), scope.logs()));
        int status = ctl.awaitExit(Duration.ofSeconds(100));
        Matcher m = Pattern.compile("upgraded: pid " + old.pid() + " handed over to pid (\\d+)").matcher(ctl.outputSince(0));
        long successor = m.find() ? Long.parseLong(m.group(1)) : -1;
        try {
            assertEquals(0, status, "jvhost ctl upgrade" + ctl.tail() + old.tail());
            assertTrue(successor > 0, "ctl names the successor" + ctl.tail());
            assertEquals(0, old.awaitExit(Duration.ofSeconds(30)), "the old jvhost exits 0" + old.tail());
            assertTrue(fe.getFeatures() != 0, "the front-end's connection answers the successor");
            assertTrue(ProcessHandle.of(successor).map(ProcessHandle::isAlive).orElse(false), "the successor serves");
        } finally {
            if (successor > 0) {
                ProcessHandle.of(successor).ifPresent(p -> {
                    p.destroy();
                    p.onExit().orTimeout(10, TimeUnit.SECONDS).exceptionally(t -> null).join();
                    p.destroyForcibly();
                });
            }
        }
    }

    /**
     * An instrumented loopback device ({@code strict=on}, {@code trace=}) is handed over like any other:
     * the front-end keeps its connection, and the new process neither judges the replayed requests as the
     * front-end's (no strict WARN) nor sees a new connection.
     */
    @Test
    void anInstrumentedLoopbackIsHandedOverToo() throws Exception {
        Path sock = sockets.resolve("lo.sock");
        List<String> args = List.of("--device", "loopback:socket=" + sock + ",strict=on,trace="
                + sockets.resolve("lo.trace"), "--control", control.toString());
        ProcessUnderTest old = serve("jvhost-old", List.of(), args);
        Peers.awaitNewFile(handoverSocket(), null, Duration.ofSeconds(30), old);
        ScriptedFrontend fe = scope.track(Serve.negotiate(sock));
        fe.kick(0);
        ProcessUnderTest fresh = serve("jvhost-new", List.of(), plus(args, List.of("--takeover")));
        assertEquals(0, old.awaitExit(Duration.ofSeconds(60)), "the old jvhost exits 0" + old.tail() + fresh.tail());
        fresh.await(RUNS_AGAIN, 0, Duration.ofSeconds(30), null);
        fe.kick(0);
        assertTrue(fe.getFeatures() != 0, "the front-end's connection answers the new process");
        String out = fresh.outputSince(0);
        assertTrue(!out.contains("strict:") && !out.contains("front-end connected"), "the new jvhost judged the "
                + "replay or saw a new connection" + fresh.tail());
    }

    private static List<String> plus(List<String> a, List<String> b) {
        List<String> all = new ArrayList<>(a);
        all.addAll(b);
        return all;
    }

    private static final Pattern KICKS = Pattern.compile("\\bkicks=(\\d+)");

    /** The device's kick count in {@code jvhost ctl counters} (its line comes before the queues'). */
    private static long kicks(String counters) {
        Matcher m = KICKS.matcher(counters);
        return m.find() ? Long.parseLong(m.group(1)) : -1;
    }

    /**
     * Runs {@code jvhost ctl counters} until its answer passes {@code test} and holds every one of
     * {@code parts} (10 s at most); the last answer then, which stays the same once kicks stopped.
     */
    private String awaitCounters(java.util.function.Predicate<String> test, String... parts) {
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        String out = "";
        for (int n = 0; System.nanoTime() < deadline; n++) {
            ProcessUnderTest ctl = scope.track(ProcessUnderTest.start("ctl-counters-" + n, List.of(Serve.java(), "-jar",
                    Serve.jar().toString(), "ctl", "--control", control.toString(), "counters"), scope.logs()));
            ctl.awaitExit(Duration.ofSeconds(10));
            out = ctl.outputSince(0);
            String answer = out;
            if (test.test(answer) && java.util.Arrays.stream(parts).allMatch(answer::contains)) {
                return answer.strip();
            }
            Peers.sleep(Duration.ofMillis(200));
        }
        throw new AssertionError("ctl counters never showed " + String.join(", ", parts) + ": " + out);
    }

    private Path handoverSocket() {
        return control.resolveSibling(control.getFileName() + ".handover");
    }

    /** From the old process's "paused" line to the new one's last "runs again" line, in ms. */
    static long gapMs(ProcessUnderTest old, ProcessUnderTest fresh) {
        return gapMs(old, fresh, false);
    }

    /**
     * From the old process's "paused" line to the new one's last "runs again" line, in ms; with
     * {@code ringStart}, to when that connection's last ring started on its worker (the line says how much
     * earlier; a jvhost that does not say counts as the line).
     */
    static long gapMs(ProcessUnderTest old, ProcessUnderTest fresh, boolean ringStart) {
        Matcher p = PAUSED.matcher(old.outputSince(0));
        Instant paused = null;
        while (p.find()) {
            paused = Instant.parse(p.group(1));
        }
        Matcher r = RUNS_AGAIN.matcher(fresh.outputSince(0));
        Instant resumed = null;
        while (r.find()) {
            Instant at = Instant.parse(r.group(1));
            if (ringStart && r.group(2) != null) {
                at = at.minusNanos(Long.parseLong(r.group(2)) * 1000);
            }
            resumed = resumed == null || at.isAfter(resumed) ? at : resumed;
        }
        assertTrue(paused != null && resumed != null, "no paused/runs-again lines" + old.tail() + fresh.tail());
        return Duration.between(paused, resumed).toMillis();
    }

    private static void awaitCount(ProcessUnderTest p, Pattern pattern, int count, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            Matcher m = pattern.matcher(p.outputSince(0));
            int found = 0;
            while (m.find()) {
                found++;
            }
            if (found >= count) {
                return;
            }
            assertTrue(System.nanoTime() < deadline, found + " of " + count + " /" + pattern + "/ lines" + p.tail());
            Peers.sleep(Duration.ofMillis(200));
        }
    }
}
