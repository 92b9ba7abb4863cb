package org.jvhost.host.it;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.testkit.ScriptedFrontend;

/** {@code java -jar jvhost.jar serve ARGS} for operations tests, and what they read from /proc. */
final class Serve {
    private Serve() {
    }

    /** {@code taskset -c CPU} for the back-end's CPU ({@link Peers#BACK_END_CPU}): a prefix for {@link #command}. */
    static final List<String> ON_BACK_END_CPU = List.of(Peers.TASKSET, "-c", String.valueOf(Peers.BACK_END_CPU));

    /** The java launcher of the JVM running the tests. */
    static String java() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    /** The shaded jar ({@code -Djvhost.jar}, default {@code host/target/jvhost.jar}); fails if it was not built. */
    static Path jar() {
        Path jar = Path.of(System.getProperty("jvhost.jar", Peers.targetDir().resolve("jvhost.jar").toString()));
        if (!Files.isRegularFile(jar)) {
            throw new AssertionError("jvhost jar " + jar + " does not exist: run the package phase (mvn verify) first");
        }
        return jar;
    }

    /** The command line: {@code prefix... java -jar jvhost.jar serve args...}. */
    static List<String> command(List<String> prefix, List<String> args) {
        return command(prefix, jar(), args);
    }

    /** As {@link #command(List, List)}, with another copy of the jar (one that another user can read). */
    static List<String> command(List<String> prefix, Path jar, List<String> args) {
        List<String> cmd = new ArrayList<>(prefix);
        cmd.add(java());
        cmd.add("-jar");
        cmd.add(jar.toString());
        cmd.add("serve");
        cmd.addAll(args);
        return cmd;
    }

    static ProcessUnderTest start(String name, Path logDir, String... args) {
        return ProcessUnderTest.start(name, command(List.of(), List.of(args)), logDir);
    }

    /**
     * jvhost serving {@code device} (a {@code --device} spec listening on {@code sock}) on the back-end's
     * CPU, once its socket file is there (a new one, not a stale file of an earlier run).
     */
    static ProcessUnderTest listening(String name, Path sock, String device, Path logDir) {
        Object stale = Peers.fileKey(sock);
        ProcessUnderTest p = ProcessUnderTest.start(name, command(ON_BACK_END_CPU, List.of("--device", device)), logDir);
        try {
            Peers.awaitNewFile(sock, stale, java.time.Duration.ofSeconds(30), p);
            return p;
        } catch (RuntimeException | Error e) {
            p.close();
            throw e;
        }
    }

    /** A numeric field of /proc/PID/status (Threads, or VmRSS in kB). */
    static long procStatus(long pid, String field) {
        try {
            String status = Files.readString(Path.of("/proc", String.valueOf(pid), "status"));
            Matcher m = Pattern.compile("(?m)^" + field + ":\\s+(\\d+)").matcher(status);
            if (!m.find()) {
                throw new AssertionError("no " + field + " in /proc/" + pid + "/status");
            }
            return Long.parseLong(m.group(1));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Thread names of {@code pid} by count, from /proc/PID/task/N/comm, for failure messages. */
    static Map<String, Integer> threadNames(long pid) {
        Map<String, Integer> names = new java.util.TreeMap<>();
        try (var tasks = Files.list(Path.of("/proc", String.valueOf(pid), "task"))) {
            tasks.forEach(t -> {
                try {
                    names.merge(Files.readString(t.resolve("comm")).trim().replaceAll("\\d+$", "N"), 1, Integer::sum);
                } catch (IOException e) {
                    // the thread ended meanwhile
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return names;
    }

    /**
     * Negotiates like a front-end starting a NIC: features, protocol features with REPLY_ACK (so every
     * step below is acknowledged by the back-end), a memory table of one small region, and ring 0
     * (size 64) set up, given kick and call eventfds, and enabled.
     */
    static ScriptedFrontend negotiate(Path socket) throws IOException {
        ScriptedFrontend fe = ScriptedFrontend.connect(socket);
        try {
            fe.setOwner();
            fe.setFeatures(fe.getFeatures());
            fe.setProtocolFeatures(ProtocolFeatures.REPLY_ACK | ProtocolFeatures.MQ);
            fe.useReplyAck(true);
            fe.addRegion(0, 64 * 1024);
            fe.setMemTable();
            fe.setVringNum(0, 64);
            fe.setVringBase(0, 0);
            fe.setVringAddrGpa(0, 0x0, 0x1000, 0x2000);
            fe.setVringCall(0);
            fe.setVringKick(0);
            fe.setVringEnable(0, true);
            return fe;
        } catch (IOException | RuntimeException e) {
            fe.close();
            throw e;
        }
    }
}
