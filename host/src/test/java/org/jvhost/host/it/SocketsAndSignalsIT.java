package org.jvhost.host.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Running jvhost as an operator or a management tool does: SIGTERM with a ring running, socket file
 * permissions and the front-end uid allow-list, and the vhost-user back-end program conventions
 * ({@code --socket-path}, {@code --fd} from a launcher, {@code --print-capabilities}), and SIGHUP without
 * a config file.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class SocketsAndSignalsIT {
    @RegisterExtension
    final PeerScope scope = new PeerScope();
    private Path dir;
    private Path logDir;

    @BeforeEach
    void setUp() {
        dir = scope.sockets();
        logDir = scope.logs();
    }

    private ProcessUnderTest serve(String... args) {
        return scope.track(Serve.start("jvhost", logDir, args));
    }

    /** A front-end that negotiated with the device on {@code socket}; closed after the test. */
    private ScriptedFrontend negotiate(Path socket) throws IOException {
        return scope.track(Serve.negotiate(socket));
    }

    private static void awaitServing(ProcessUnderTest p, int devices) {
        p.await(Pattern.compile("serving " + devices + " device\\(s\\)"), 0, Duration.ofSeconds(60));
    }

    @Test
    void sigtermWithARunningRingExitsZeroWithinASecondAndRemovesEverySocketFile() throws Exception {
        Path a = dir.resolve("a.sock");
        Path b = dir.resolve("b.sock");
        Path c = dir.resolve("c.sock");
        ProcessUnderTest p = serve("--device", "loopback:socket=" + a, "--device", "loopback:socket=" + b,
                "--device", "loopback:socket=" + c + ",socket-mode=0660");
        awaitServing(p, 3);
        ScriptedFrontend fe = negotiate(a);
        negotiate(b);
        for (int i = 0; i < 5; i++) {
            fe.kick(0); // kicks on the running ring while it stops
        }
        int mark = p.mark();
        long t0 = System.nanoTime();
        ProcessHandle.of(p.pid()).orElseThrow().destroy(); // SIGTERM
        int status = p.awaitExit(Duration.ofSeconds(5));
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertEquals(0, status, "exit status" + p.tail());
        assertTrue(ms < 1000, "exited " + ms + " ms after SIGTERM");
        for (Path s : List.of(a, b, c)) {
            assertFalse(Files.exists(s), s + " removed");
        }
        String out = p.outputSince(mark);
        assertTrue(out.contains("stopping"), out);
        assertFalse(out.contains("ERROR") || out.contains("WARN"), "a clean stop:\n" + out);
        assertTrue(fe.isClosedByPeer(1000), "the front-end sees the connection close");
    }

    @Test
    void socketFilesAreOwnerOnlyUnlessAskedAndUnlistedUidsAreRefused() throws Exception {
        Path open = dir.resolve("open.sock");
        Path guarded = dir.resolve("guarded.sock");
        Path shared = dir.resolve("shared.sock");
        ProcessUnderTest p = serve("--device", "loopback:socket=" + open,
                "--device", "loopback:socket=" + guarded + ",allow-uid=12345",
                "--device", "loopback:socket=" + shared + ",socket-mode=0660,socket-group=root");
        awaitServing(p, 3);
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(open)));
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(guarded)));
        assertEquals("rw-rw----", PosixFilePermissions.toString(Files.getPosixFilePermissions(shared)));
        long me = new com.sun.security.auth.module.UnixSystem().getUid();
        int mark = p.mark();
        try (ScriptedFrontend refused = ScriptedFrontend.connect(guarded)) {
            assertTrue(refused.isClosedByPeer(3000), "uid " + me + " is not 12345: refused");
        }
        p.await(Pattern.compile("WARN .*refused a front-end with uid " + me + " on " + Pattern.quote(guarded.toString())
                + ": allowed uids are \\[12345\\]"), mark, Duration.ofSeconds(5));
        negotiate(open); // other devices are unaffected
        negotiate(shared);
        assertTrue(p.isAlive());
    }

    @Test
    void aStaleSocketIsReplacedButALiveOneIsNot() throws Exception {
        Path s = dir.resolve("s.sock");
        ProcessUnderTest first = serve("--device", "loopback:socket=" + s);
        awaitServing(first, 1);
        ProcessUnderTest second = serve("--device", "loopback:socket=" + s);
        assertEquals(1, second.awaitExit(Duration.ofSeconds(30)), second.tail());
        assertTrue(second.outputSince(0).contains(s + ": another process is listening on this socket"), second.tail());
        first.kill(); // a crash leaves the socket file behind
        assertTrue(Files.exists(s));
        ProcessUnderTest third = serve("--device", "loopback:socket=" + s);
        awaitServing(third, 1);
        negotiate(s);
    }

    @Test
    void socketPathServesASingleDevice() throws Exception {
        Path s = dir.resolve("single.sock");
        ProcessUnderTest p = serve("--socket-path", s.toString(), "--device", "loopback:queues=2");
        awaitServing(p, 1);
        assertTrue(negotiate(s).getQueueNum() == 4, "queues=2: two queue pairs");
    }

    @Test
    void fdServesAListeningSocketInheritedFromALauncher() throws Exception {
        Path s = dir.resolve("inherited.sock");
        // a launcher as libvirt or systemd would be: creates and binds the socket, hands it over as fd 3
        String launcher = "import os, socket, sys\n"
                + "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
                + "s.bind(sys.argv[1]); s.listen(8)\n"
                + "fd = s.detach()\n"
                + "if fd != 3:\n"
                + "    os.dup2(fd, 3); os.close(fd)\n"
                + "os.set_inheritable(3, True)\n"
                + "os.execv(sys.argv[2], sys.argv[2:])\n";
        Peers.assumeInstalled("/usr/bin/python3", "python3");
        List<String> cmd = new ArrayList<>(List.of("/usr/bin/python3", "-c", launcher, s.toString()));
        cmd.addAll(Serve.command(List.of(), List.of("--fd", "3", "--device", "loopback")));
        ProcessUnderTest p = scope.track(ProcessUnderTest.start("jvhost", cmd, logDir));
        awaitServing(p, 1);
        assertTrue(p.outputSince(0).contains("listening on inherited fd 3"), p.tail());
        negotiate(s);
        ProcessHandle.of(p.pid()).orElseThrow().destroy();
        assertEquals(0, p.awaitExit(Duration.ofSeconds(5)));
        assertTrue(Files.exists(s), "the launcher's socket file is the launcher's to remove");
    }

    @Test
    void sighupReloadsEvenWhenStartedUnderNohup() throws Exception {
        Path a = dir.resolve("a.sock");
        // nohup leaves SIGHUP ignored, and the JVM would keep it so, dropping the reload handler
        ProcessUnderTest p = scope.track(ProcessUnderTest.start("jvhost",
                Serve.command(List.of("nohup"), List.of("--device", "loopback:socket=" + a)), logDir));
        awaitServing(p, 1);
        p.await(Pattern.compile("SIGHUP was ignored when jvhost started"), 0, Duration.ofSeconds(5));
        int mark = p.mark();
        Process hup = new ProcessBuilder("kill", "-HUP", String.valueOf(p.pid())).start();
        assertEquals(0, hup.waitFor(), "kill -HUP");
        p.await(Pattern.compile("SIGHUP: nothing to reload"), mark, Duration.ofSeconds(10));
        assertTrue(p.isAlive(), "still serving after SIGHUP" + p.tail());
        ProcessHandle.of(p.pid()).orElseThrow().destroy(); // SIGTERM
        assertEquals(0, p.awaitExit(Duration.ofSeconds(5)), p.tail());
    }

    @Test
    void sighupWithoutAConfigFileIsLoggedAndServingGoesOn() throws Exception {
        Path a = dir.resolve("a.sock");
        ProcessUnderTest p = serve("--device", "loopback:socket=" + a);
        awaitServing(p, 1);
        int mark = p.mark();
        Process hup = new ProcessBuilder("kill", "-HUP", String.valueOf(p.pid())).start();
        assertEquals(0, hup.waitFor(), "kill -HUP");
        p.await(Pattern.compile("SIGHUP: nothing to reload"), mark, Duration.ofSeconds(10));
        Thread.sleep(500);
        assertTrue(p.isAlive(), "still serving after SIGHUP" + p.tail());
        negotiate(a);
        ProcessHandle.of(p.pid()).orElseThrow().destroy(); // SIGTERM
        assertEquals(0, p.awaitExit(Duration.ofSeconds(5)), p.tail());
    }

    @Test
    void printCapabilitiesPrintsTheJsonAndExits() {
        ProcessUnderTest p = serve("--print-capabilities", "--device", "loopback", "--socket-path", dir.resolve("x").toString());
        assertEquals(0, p.awaitExit(Duration.ofSeconds(30)), p.tail());
        assertEquals("{\"type\": \"net\"}", p.outputSince(0).trim());
        assertFalse(Files.exists(dir.resolve("x")), "nothing served");
        // the spec: other options are ignored, and nothing is created to answer
        ProcessUnderTest ignored = serve("--print-capabilities", "--device", "loopback:queues=99");
        assertEquals(0, ignored.awaitExit(Duration.ofSeconds(30)), ignored.tail());
        ProcessUnderTest blk = serve("--print-capabilities", "--device", "blk");
        assertEquals(0, blk.awaitExit(Duration.ofSeconds(30)), blk.tail());
        assertEquals("{\"type\": \"block\", \"features\": []}", blk.outputSince(0).trim());
        // the built-in types serve two virtio devices (net, block): without --device there is no one answer
        ProcessUnderTest alone = serve("--print-capabilities");
        assertEquals(2, alone.awaitExit(Duration.ofSeconds(30)), alone.tail());
    }
}
