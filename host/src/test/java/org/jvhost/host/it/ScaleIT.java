package org.jvhost.host.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Many NICs in one host: {@code jvhost serve} with N loopback devices (default 1,000; system property
 * {@code jvhost.scale.devices}) given through a picocli @argfile. A front-end in this JVM negotiates
 * every one of them (features, memory table, one enabled ring with kick and call eventfds, every step
 * acknowledged with REPLY_ACK); then the process must hold fewer than 64 threads and less than 1 GiB
 * resident, and on SIGTERM remove all N socket files and exit 0.
 *
 * <p>Prints one {@code SCALE-RESULT} line (and writes it to {@code target/scale-N.txt}) for
 * scripts/bench-scale.sh and BENCHMARKS.md.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class ScaleIT {
    private static final int MAX_THREADS = 64;
    private static final long MAX_RSS_KB = 1024 * 1024;

    @RegisterExtension
    final PeerScope scope = new PeerScope();
    private final List<ScriptedFrontend> frontends = new ArrayList<>();

    @Test
    void thousandLoopbackDevicesInOneHost() throws Exception {
        int n = Integer.getInteger("jvhost.scale.devices", 1000);
        Path sockets = scope.sockets();
        List<Path> paths = new ArrayList<>();
        StringBuilder args = new StringBuilder("--workers 2\n");
        for (int i = 0; i < n; i++) {
            Path p = sockets.resolve("d" + i + ".sock");
            paths.add(p);
            args.append("--device loopback:socket=").append(p).append('\n');
        }
        Path argFile = sockets.resolve("serve.args");
        Files.writeString(argFile, args);

        long t0 = System.nanoTime();
        ProcessUnderTest jvhost = scope.track(Serve.start("jvhost", scope.logs(), "@" + argFile));
        jvhost.await(Pattern.compile("serving " + n + " device\\(s\\)"), 0, Duration.ofSeconds(120));
        long listeningMs = (System.nanoTime() - t0) / 1_000_000;
        for (Path p : paths) {
            assertTrue(Files.exists(p), p + " exists once serve says it serves");
        }
        for (Path p : paths) {
            frontends.add(scope.track(Serve.negotiate(p)));
        }
        long negotiatedMs = (System.nanoTime() - t0) / 1_000_000;

        long pid = jvhost.pid();
        long threads = Serve.procStatus(pid, "Threads");
        long rssKb = Serve.procStatus(pid, "VmRSS");
        String result = String.format("SCALE-RESULT devices=%d threads=%d rss_mib=%.1f listening_ms=%d negotiated_ms=%d",
                n, threads, rssKb / 1024.0, listeningMs, negotiatedMs);
        System.out.println(result);
        Files.writeString(Peers.targetDir().resolve("scale-" + n + ".txt"), result + "\n");
        assertTrue(threads < MAX_THREADS, threads + " threads: " + Serve.threadNames(pid));
        assertTrue(rssKb < MAX_RSS_KB, "VmRSS " + rssKb + " kB");
        assertTrue(jvhost.isAlive());

        // every ring still answers after the whole fleet negotiated: a kick on a few of them reaches the
        // device (an empty ring: nothing to send back, but the kick must not break anything)
        for (int i = 0; i < n; i += Math.max(1, n / 10)) {
            frontends.get(i).kick(0);
            assertTrue(frontends.get(i).getFeatures() != 0, "device " + i + " still answers");
        }

        long s0 = System.nanoTime();
        ProcessHandle.of(pid).orElseThrow().destroy(); // SIGTERM
        assertEquals(0, jvhost.awaitExit(Duration.ofSeconds(30)), "exit status after SIGTERM" + jvhost.tail());
        long stopMs = (System.nanoTime() - s0) / 1_000_000;
        System.out.println("SCALE-RESULT devices=" + n + " sigterm_to_exit_ms=" + stopMs);
        for (Path p : paths) {
            assertTrue(!Files.exists(p), p + " removed on SIGTERM");
        }
    }
}
