package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Random;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A seeded stream of hostile and half-valid messages (any request code, bad versions and flags, sizes
 * from 0 to 2^32-1, random bodies, stray memfds and eventfds) against one device, while another device
 * on the same worker and the same control loop carries a live ring. The host must answer or close each
 * connection, leak no fd, keep serving the bystander, and then serve a well-behaved front-end on the
 * fuzzed socket. A second test mixes the resource attacks of {@link HostileResourceKinds} the same way.
 */
@Timeout(150)
class HostileFrontendFuzzTest {
    private static final int[] SIZES = {0, 4, 8, 12, 20, 40, 264, 300, 4096, 5000, -1};
    private static final int[] FLAGS = {1, 1, 1, 9, 0, 5, 2, 0x3ba8d69a};

    @TempDir
    Path dir;
    Host host;
    LiveRing target;
    LiveRing bystander;

    LiveRing spacer;

    @BeforeEach
    void start() throws Exception {
        host = new Host(1); // one worker for all
        Path socket = dir.resolve("bystander.sock");
        bystander = new LiveRing(host, "bystander", socket).connect(socket, true);
        // devices take the control loops in turn: the spacer makes the target share the bystander's
        assertEquals(2, Host.CONTROL_THREADS);
        spacer = new LiveRing(host, "spacer", dir.resolve("spacer.sock"));
        target = new LiveRing(host, "target", dir.resolve("target.sock"));
    }

    @AfterEach
    void stop() throws Exception {
        target.close();
        spacer.close();
        bystander.close();
        host.close();
    }

    @Test
    void garbageNeitherCrashesNorLeaksAndOthersKeepWorking() throws Exception {
        Path socket = dir.resolve("target.sock");
        int before = ProtocolLifecycleTest.openFds();
        int fuzzKindsBefore = fuzzKindFds();
        java.util.List<String> targetsBefore = fdTargets();
        Random random = new Random(7);
        long deadline = System.nanoTime() + 30_000_000_000L;
        int sent = 0;
        int connections = 0;
        while (sent < 3000 && System.nanoTime() < deadline) {
            connections++;
            try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
                for (int i = random.nextInt(30); i >= 0; i--) {
                    sendOne(fe, random);
                    sent++;
                }
            } catch (IOException closedByTheHost) {
                // expected for most malformed messages: the host closes the connection
            }
            if (connections % 50 == 0) {
                bystander.kickAndAssertServed(bystander.ping());
            }
        }
        assertTrue(sent >= 1000, "sent only " + sent + " messages");

        bystander.kickAndAssertServed(bystander.ping());
        assertFalse(host.status(bystander.ctx).failed());
        // the host closed every fd it took from the fuzzing front-ends: the kinds the fuzz sends return to
        // exactly their count before, and the total does not grow (other tests in this JVM may close fds)
        long settle = System.nanoTime() + 5_000_000_000L;
        while (fuzzKindFds() != fuzzKindsBefore && System.nanoTime() < settle) {
            Thread.sleep(20);
        }
        assertEquals(fuzzKindsBefore, fuzzKindFds(), "eventfds and fuzz memfds open after " + sent + " hostile messages");
        int after = ProtocolLifecycleTest.awaitFdsAtMost(before);
        java.util.List<String> added = fdTargets();
        targetsBefore.forEach(added::remove);
        assertTrue(after <= before, "open fds grew from " + before + " to " + after + " after " + sent
                + " hostile messages: " + added);
        // and the fuzzed socket serves a well-behaved front-end
        target.connect(socket, true).kickAndAssertServed(target.ping());
    }

    /**
     * Every resource attack at least once, then a seeded mix. After each the bystander, on the target's
     * worker and control loop, still has its ring served; at the end the fds of the kinds the attacks
     * send and the host's threads are back at their counts before, and the target serves a well-behaved
     * front-end.
     */
    @Test
    void resourceAttacksLeaveNoTraceAndTheNeighbourKeepsItsTraffic() throws Exception {
        Path socket = dir.resolve("target.sock");
        int before = ProtocolLifecycleTest.openFds();
        int fuzzKindsBefore = fuzzKindFds();
        java.util.List<String> threadsBefore = hostThreads();
        HostileResourceKinds[] kinds = HostileResourceKinds.values();
        int[] runs = new int[kinds.length];
        Random random = new Random(11);
        long deadline = System.nanoTime() + 60_000_000_000L;
        for (int round = 0; round < 3 * kinds.length && System.nanoTime() < deadline; round++) {
            HostileResourceKinds kind = round < kinds.length ? kinds[round] : kinds[random.nextInt(kinds.length)];
            kind.run(this, socket, random);
            runs[kind.ordinal()]++;
            bystander.kickAndAssertServed(bystander.ping());
        }
        for (HostileResourceKinds kind : kinds) {
            assertTrue(runs[kind.ordinal()] > 0, kind + " never ran");
        }
        assertFalse(host.status(bystander.ctx).failed());
        long settle = System.nanoTime() + 5_000_000_000L;
        while ((fuzzKindFds() != fuzzKindsBefore || !hostThreads().equals(threadsBefore))
                && System.nanoTime() < settle) {
            Thread.sleep(20);
        }
        assertEquals(fuzzKindsBefore, fuzzKindFds(), "eventfds and fuzz memfds open after the attacks");
        int after = ProtocolLifecycleTest.awaitFdsAtMost(before);
        assertTrue(after <= before, "open fds grew from " + before + " to " + after + " after the attacks");
        assertEquals(threadsBefore, hostThreads(), "the host's threads after the attacks");
        target.connect(socket, true).kickAndAssertServed(target.ping());
    }

    /** The names of the host's threads (jvhost-*), sorted. */
    private static java.util.List<String> hostThreads() {
        return Thread.getAllStackTraces().keySet().stream().map(Thread::getName)
                .filter(n -> n.startsWith("jvhost-")).sorted().collect(java.util.stream.Collectors.toList());
    }

    private static java.util.List<String> fdTargets() throws IOException {
        java.util.List<String> out = new java.util.ArrayList<>();
        try (java.nio.file.DirectoryStream<Path> fds = java.nio.file.Files.newDirectoryStream(Path.of("/proc/self/fd"))) {
            for (Path fd : fds) {
                try {
                    out.add(java.nio.file.Files.readSymbolicLink(fd).toString());
                } catch (IOException closedMeanwhile) {
                    // gone between listing and reading
                }
            }
        }
        return out;
    }

    /** Open fds of the kinds the fuzz sends: eventfds and the memfds it names "fuzz". */
    private static int fuzzKindFds() throws IOException {
        return (int) fdTargets().stream().filter(t -> t.contains("[eventfd]") || t.contains("memfd:fuzz")).count();
    }

    private static void sendOne(ScriptedFrontend fe, Random random) throws IOException {
        int code = random.nextInt(10) == 0 ? random.nextInt() : random.nextInt(46);
        int flags = FLAGS[random.nextInt(FLAGS.length)];
        int size = SIZES[random.nextInt(SIZES.length)];
        // the body usually matches the size field up to 300 bytes; sometimes it is missing altogether
        byte[] body = new byte[random.nextInt(10) < 8 ? (int) Math.min(Integer.toUnsignedLong(size), 300) : 0];
        random.nextBytes(body);
        ByteBuffer msg = ByteBuffer.allocate(12 + body.length).order(ByteOrder.LITTLE_ENDIAN);
        msg.putInt(code).putInt(flags).putInt(size).put(body);
        int fdKind = random.nextInt(10);
        int fd = fdKind == 0 ? LinuxSys.memfdCreate("fuzz", LinuxSys.MFD_CLOEXEC)
                : fdKind == 1 ? LinuxSys.eventfd(LinuxSys.EFD_CLOEXEC) : -1;
        try {
            if (fd >= 0) {
                fe.sendRaw(msg.array(), fd);
            } else {
                fe.sendRaw(msg.array());
            }
        } finally {
            LinuxSys.closeQuietly(fd); // the host got its own copy with the message
        }
    }
}
