package org.jvhost.host.control;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.jvhost.host.FdLimit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;

/** The control socket's transport: lines in, lines out, pipelined requests, limits, the socket file. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ControlServerTest {

    @TempDir
    Path dir;

    @Test
    void answersEachLineInOrderAndRemovesItsSocketFileOnClose() throws Exception {
        Path path = dir.resolve("ctl.sock");
        try (ControlServer server = ControlServer.start(path, line -> Json.write(Map.of("echo", line)));
             AFUNIXSocket s = AFUNIXSocket.connectTo(AFUNIXSocketAddress.of(path))) {
            OutputStream out = s.getOutputStream();
            out.write("one\ntwo\n\nthr".getBytes(StandardCharsets.UTF_8)); // pipelined, a blank line, a partial one
            out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
            assertEquals("{\"echo\":\"one\"}", in.readLine());
            assertEquals("{\"echo\":\"two\"}", in.readLine());
            out.write("ee\n".getBytes(StandardCharsets.UTF_8));
            out.flush();
            assertEquals("{\"echo\":\"three\"}", in.readLine());
            assertEquals("{\"echo\":\"x\"}", ControlClient.request(path, "x"));
        }
        assertFalse(Files.exists(path));
    }

    /**
     * An idle control server waits in the kernel: junixsocket's {@code select(0)} does not block, and a loop
     * on it spun at a CPU's worth in every jvhost, inside every hot upgrade's gap too. Spinning, the thread
     * took 75% of a CPU; 10% allows for a loaded test machine's clock ticks.
     */
    @Test
    void anIdleServerTakesNoCpu() throws Exception {
        Path path = dir.resolve("ctl.sock");
        try (ControlServer server = ControlServer.start(path, line -> "{}")) {
            assertEquals("{}", ControlClient.request(path, "warm"));
            Thread thread = Thread.getAllStackTraces().keySet().stream()
                    .filter(t -> t.getName().equals("jvhost-control")).findFirst().orElseThrow();
            java.lang.management.ThreadMXBean mx = java.lang.management.ManagementFactory.getThreadMXBean();
            long cpu0 = mx.getThreadCpuTime(thread.getId());
            long t0 = System.nanoTime();
            Thread.sleep(500);
            long cpuNs = mx.getThreadCpuTime(thread.getId()) - cpu0;
            long wallNs = System.nanoTime() - t0;
            assertTrue(cpuNs < wallNs / 10, "the idle control thread ran " + cpuNs / 1_000_000 + " ms of CPU in "
                    + wallNs / 1_000_000 + " ms");
            assertEquals("{}", ControlClient.request(path, "still served"));
        }
    }

    @Test
    void everyFinishedClientsConnectionIsClosedSoRequestsNeverRunOutOfConnectionsOrFds() throws Exception {
        Path path = dir.resolve("ctl.sock");
        try (ControlServer server = ControlServer.start(path, line -> Json.write(Map.of("echo", line)))) {
            ControlClient.request(path, "warm-up");
            long fds = openFds();
            // one request per connection, as jvhost ctl makes them: a server that kept finished clients
            // would refuse the client after MAX_CONNECTIONS, and hold one fd per request until then
            for (int i = 0; i < 3 * ControlServer.MAX_CONNECTIONS; i++) {
                assertEquals("{\"echo\":\"n" + i + "\"}", ControlClient.request(path, "n" + i));
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            while (openFds() > fds + 2 && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertTrue(openFds() <= fds + 2, "open fds " + fds + " before, " + openFds() + " after");
        }
    }

    private static long openFds() throws java.io.IOException {
        try (var s = Files.list(Path.of("/proc/self/fd"))) {
            return s.count();
        }
    }

    @Test
    void anOverlongRequestIsRefusedAndTheConnectionClosed() throws Exception {
        Path path = dir.resolve("ctl.sock");
        try (ControlServer server = ControlServer.start(path, line -> "{}");
             AFUNIXSocket s = AFUNIXSocket.connectTo(AFUNIXSocketAddress.of(path))) {
            byte[] big = new byte[ControlConnection.MAX_REQUEST_BYTES + 10];
            java.util.Arrays.fill(big, (byte) 'a');
            s.getOutputStream().write(big);
            BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
            Map<?, ?> r = (Map<?, ?>) Json.parse(in.readLine());
            assertEquals(false, r.get("ok"));
            assertTrue(((String) r.get("error")).contains("longer than"));
            assertEquals(null, in.readLine(), "closed after the refusal");
        }
    }

    @Test
    void aClientThatSendsRequestsButNeverReadsTheAnswersIsDroppedAtTheCapAndOthersAreStillServed() throws Exception {
        Path path = dir.resolve("ctl.sock");
        String answer = "{\"pad\":\"" + "x".repeat(4000) + "\"}";
        int requests = 1000; // 4 MB of answers for 2 kB of requests
        try (ControlServer server = ControlServer.start(path, line -> answer);
             AFUNIXSocket s = AFUNIXSocket.connectTo(AFUNIXSocketAddress.of(path))) {
            s.getOutputStream().write("x\n".repeat(requests).getBytes(StandardCharsets.UTF_8));
            Thread.sleep(500); // the server answers into its queue; we read nothing
            s.setSoTimeout(3000);
            long read = 0;
            String end;
            byte[] buf = new byte[64 * 1024];
            try {
                for (int n; (n = s.getInputStream().read(buf)) >= 0; ) {
                    read += n;
                }
                end = "end of stream";
            } catch (java.net.SocketTimeoutException e) {
                end = "still open after 3 s";
            } catch (java.io.IOException e) {
                end = "reset (" + e.getMessage() + ")"; // we left requests unread: the kernel may reset
            }
            assertFalse(end.startsWith("still open"), "after " + read + " bytes of answers the client was " + end);
            assertTrue(read < (long) requests * answer.length(), read + " bytes of answers: not dropped at the cap");
            assertEquals("{\"pad\":\"" + "x".repeat(4000) + "\"}", ControlClient.request(path, "x"), "others are served");
        }
    }

    @Test
    void anErrorThrownByTheHandlerIsAnsweredAndTheServerGoesOn() throws Exception {
        Path path = dir.resolve("ctl.sock");
        try (ControlServer server = ControlServer.start(path, line -> {
            if (line.equals("boom")) {
                throw new StackOverflowError("plugin recursion");
            }
            return Json.write(Map.of("echo", line));
        })) {
            Map<?, ?> r = (Map<?, ?>) Json.parse(request(path, "boom"));
            assertEquals(false, r.get("ok"));
            assertTrue(((String) r.get("error")).contains("StackOverflowError: plugin recursion"), r.toString());
            assertEquals("{\"echo\":\"next\"}", request(path, "next"));
        }
    }

    /** One request on a new connection; fails after 5 s without an answer (ControlClient waits 120 s). */
    private static String request(Path path, String line) throws java.io.IOException {
        try (AFUNIXSocket s = AFUNIXSocket.connectTo(AFUNIXSocketAddress.of(path))) {
            s.setSoTimeout(5000);
            s.getOutputStream().write((line + "\n").getBytes(StandardCharsets.UTF_8));
            return new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8)).readLine();
        } catch (java.net.SocketTimeoutException e) {
            throw new AssertionError("no answer to '" + line + "' within 5 s", e);
        }
    }

    @Test
    void runningOutOfFileDescriptorsPausesAcceptingAndServingResumesWhenFdsAreBack() throws Exception {
        Path path = dir.resolve("ctl.sock");
        try (ControlServer server = ControlServer.start(path, line -> Json.write(Map.of("echo", line)))) {
            assertEquals("{\"echo\":\"warm-up\"}", ControlClient.request(path, "warm-up"));
            AFUNIXSocket s;
            try (FdLimit limit = FdLimit.exhausted(1)) {
                // the one fd left goes to our end; the server's accept finds none (EMFILE)
                s = AFUNIXSocket.connectTo(AFUNIXSocketAddress.of(path));
                Thread.sleep(300);
            }
            try (s) {
                s.setSoTimeout(5000);
                s.getOutputStream().write("after\n".getBytes(StandardCharsets.UTF_8));
                BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
                assertEquals("{\"echo\":\"after\"}", in.readLine());
            } catch (java.net.SocketTimeoutException e) {
                throw new AssertionError("no answer within 5 s of the fds coming back: the control server stopped", e);
            }
            assertEquals("{\"echo\":\"again\"}", ControlClient.request(path, "again"));
        }
    }

    @Test
    void aLiveControlSocketIsNotTakenOverButAStaleOneIs() throws Exception {
        Path path = dir.resolve("ctl.sock");
        try (ControlServer first = ControlServer.start(path, line -> "{}")) {
            var e = assertThrows(java.io.IOException.class, () -> ControlServer.start(path, line -> "{}"));
            assertTrue(e.getMessage().contains("another process is listening"), e.getMessage());
        }
        Files.writeString(dir.resolve("plain"), "data");
        var e = assertThrows(java.io.IOException.class, () -> ControlServer.start(dir.resolve("plain"), line -> "{}"));
        assertTrue(e.getMessage().contains("not a socket"), e.getMessage());
        // a socket file nobody listens on (a crashed run): replaced
        org.newsclub.net.unix.AFUNIXServerSocket stale = org.newsclub.net.unix.AFUNIXServerSocket.newInstance();
        stale.setDeleteOnClose(false);
        stale.bind(AFUNIXSocketAddress.of(path));
        stale.close();
        assertTrue(Files.exists(path));
        try (ControlServer again = ControlServer.start(path, line -> "{\"ok\":true}")) {
            assertEquals("{\"ok\":true}", ControlClient.request(path, "list"));
        }
    }

    @Test
    void jsonRoundTrips() {
        Object value = Map.of("s", "a \"q\" \\ \n\t\u0001", "n", -42L, "b", true, "l", List.of(1L, "x"));
        assertEquals(value, Json.parse(Json.write(value)));
        assertEquals(null, Json.parse(" null "));
        assertThrows(IllegalArgumentException.class, () -> Json.parse("{\"a\":1.5}"));
        assertThrows(IllegalArgumentException.class, () -> Json.parse("{\"a\":1} x"));
        assertThrows(IllegalArgumentException.class, () -> Json.parse("[1,"));
    }
}
