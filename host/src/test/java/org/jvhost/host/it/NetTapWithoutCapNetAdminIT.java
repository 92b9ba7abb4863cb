package org.jvhost.host.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The two ways jvhost's {@code net} device gets a TAP without CAP_NET_ADMIN, with real traffic: jvhost
 * runs as {@value Unprivileged#USER} with no capability ({@link Unprivileged}) inside the test's own
 * network namespace ({@link NetNamespace}), and testpmd's virtio_user (root) is the front-end.
 *
 * <ul>
 *   <li>{@code tapfd=}: a privileged launcher ({@link TapFdLauncher}, run under {@code ip netns exec}
 *       so the TAP is created in the namespace) opens a two-queue TAP and execs jvhost, which inherits
 *       the queue fds. Java's {@code ProcessBuilder} closes every fd above 2 in its children, so the test
 *       JVM cannot hand fds over itself, and python may be missing: the launcher is a Java main of the
 *       test classes, which execs in place, so jvhost keeps the pid, output and fds;</li>
 *   <li>{@code tap=NAME} on a persistent TAP that root created for {@value Unprivileged#USER}
 *       ({@code ip tuntap add ... user nobody}, as README's Permissions section says): jvhost attaches
 *       without CAP_NET_ADMIN and leaves the TAP in place when it stops;</li>
 *   <li>a TAP that does not exist, or is another user's, stops jvhost at start-up, at once, with an error
 *       naming the TAP and CAP_NET_ADMIN.</li>
 * </ul>
 * Traffic ({@link TapTraffic}): testpmd's txonly frames show up in the TAP's rx counters, and datagrams the
 * namespace sends out of the TAP reach testpmd in rxonly; with two queue pairs each queue carries some.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class NetTapWithoutCapNetAdminIT {
    private static final String TAP = "jvtap0";
    private static final int QUEUES = 2;
    private static final Pattern LAUNCHED = Pattern.compile("TAPFD tap=" + TAP + " ifindex=(\\d+) fds=([\\d:]+)");
    private static final Pattern READY = Pattern.compile("ready: listening on ");

    /** Stops everything in reverse order of start; the namespace (and the TAP in it) goes last. */
    @RegisterExtension
    final PeerScope scope = new PeerScope();
    private NetNamespace ns;
    private Unprivileged nobody;
    private Path sock;

    @BeforeEach
    void setUp() {
        Peers.assumeInstalled(Peers.TASKSET, "util-linux");
        Peers.assumeInstalled(Peers.TESTPMD, "dpdk-dev");
        ns = scope.track(NetNamespace.create());
        nobody = Unprivileged.in(scope.sockets());
        sock = nobody.dir().resolve("net.sock");
    }

    @Test
    void tapfdFromAPrivilegedLauncherCarriesTrafficOnBothQueues() {
        List<String> launch = new ArrayList<>(Serve.ON_BACK_END_CPU);
        launch.addAll(TapFdLauncher.command(TAP, QUEUES));
        ProcessUnderTest jvhost = start(nobody.serve(launch, List.of("--device",
                "net:socket=" + sock + ",tapfd=" + TapFdLauncher.FDS + ",queues=" + QUEUES)));
        Matcher launched = jvhost.await(LAUNCHED, 0, Duration.ofSeconds(30));
        String ifindex = launched.group(1);
        String[] fds = launched.group(2).split(":");
        assertEquals(QUEUES, fds.length, launched.group());
        nobody.assertRunsUnprivileged(jvhost);

        carryTraffic(jvhost);

        // jvhost still holds the very fds it was handed, attached to the TAP the launcher created: it
        // neither closed them nor opened the TAP anew (a new one would have another ifindex)
        assertEquals(ifindex, ns.exec("cat", "/sys/class/net/" + TAP + "/ifindex").trim(), "TAP " + TAP + "'s ifindex");
        for (String fd : fds) {
            String info = read(Path.of("/proc", String.valueOf(jvhost.pid()), "fdinfo", fd));
            assertTrue(info.contains("iff:\t" + TAP + "\n"), "jvhost's fd " + fd + " is no longer a queue of " + TAP
                    + ":\n" + info + jvhost.tail());
        }
        assertEquals(0, stop(jvhost), "exit status after SIGTERM" + jvhost.tail());
    }

    @Test
    void aPersistentTapOwnedByJvhostsUserAttachesAndStays() {
        ns.exec("ip", "tuntap", "add", "dev", TAP, "mode", "tap", "vnet_hdr", "multi_queue", "user", Unprivileged.USER);
        String ifindex = ns.exec("cat", "/sys/class/net/" + TAP + "/ifindex").trim();
        ProcessUnderTest jvhost = start(nobody.serve(Serve.ON_BACK_END_CPU, List.of("--device",
                "net:socket=" + sock + ",tap=" + TAP + ",queues=" + QUEUES)));
        nobody.assertRunsUnprivileged(jvhost);

        carryTraffic(jvhost);

        assertEquals(0, stop(jvhost), "exit status after SIGTERM" + jvhost.tail());
        assertEquals(ifindex, ns.exec("cat", "/sys/class/net/" + TAP + "/ifindex").trim(),
                "the persistent TAP outlives jvhost, untouched");
    }

    @Test
    void aMissingOrAnotherUsersTapFailsAtOnceNamingCapNetAdmin() {
        refused("jvmissing0");
        // uid 1 (daemon): a persistent TAP of someone else
        ns.exec("ip", "tuntap", "add", "dev", "jvother0", "mode", "tap", "vnet_hdr", "user", "1");
        refused("jvother0");
        assertFalse(ns.exec("ip", "-o", "link", "show").contains("jvmissing0"), "jvhost created no TAP");
    }

    private void refused(String tap) {
        long t0 = System.nanoTime();
        ProcessUnderTest jvhost = scope.track(ProcessUnderTest.start("jvhost-" + tap, ns.inside(nobody.serve(List.of(),
                List.of("--device", "net:socket=" + sock + ",tap=" + tap)).toArray(String[]::new)), scope.logs()));
        int status = jvhost.awaitExit(Duration.ofSeconds(30));
        Duration took = Duration.ofNanos(System.nanoTime() - t0);
        String out = jvhost.outputSince(0);
        assertNotEquals(0, status, "jvhost's exit status with tap=" + tap + out);
        assertTrue(out.contains("TAP " + tap + " ") && out.contains("CAP_NET_ADMIN"), "the error names the TAP and "
                + "CAP_NET_ADMIN" + jvhost.tail());
        // a JVM start and one TUNSETIFF: seconds on a loaded 2-CPU machine, never a hang or a retry loop
        assertTrue(took.toSeconds() < 20, "jvhost took " + took + " to give up");
        assertFalse(Files.exists(sock), "no socket is served");
    }

    /** Starts {@code command} inside the namespace, as jvhost, and waits until it serves {@link #sock}. */
    private ProcessUnderTest start(List<String> command) {
        ProcessUnderTest jvhost = scope.track(ProcessUnderTest.start("jvhost", ns.inside(command.toArray(String[]::new)),
                scope.logs()));
        jvhost.await(READY, 0, Duration.ofSeconds(30));
        Peers.awaitNewFile(sock, null, Duration.ofSeconds(10), jvhost);
        return jvhost;
    }

    /** testpmd with {@value #QUEUES} queue pairs, both directions, every queue; the TAP up first. */
    private void carryTraffic(ProcessUnderTest jvhost) {
        ns.configureTap(TAP);
        TestpmdFrontEnd front = scope.track(TestpmdFrontEnd.start("testpmd", sock, QUEUES, "txonly", false, scope.logs()));
        TapTraffic.txonlyReachesTheTap(front, ns, TAP, QUEUES, jvhost);
        TapTraffic.tapFramesReachRxonly(front, ns, TAP, QUEUES, jvhost, scope);
    }

    /** SIGTERM to jvhost by its pid; its exit status. */
    private static int stop(ProcessUnderTest jvhost) {
        ProcessHandle.of(jvhost.pid()).ifPresent(ProcessHandle::destroy);
        return jvhost.awaitExit(Duration.ofSeconds(15));
    }

    private static String read(Path file) {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
