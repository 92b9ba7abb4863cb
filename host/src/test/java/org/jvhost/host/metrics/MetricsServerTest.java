package org.jvhost.host.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.jvhost.host.FdLimit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The metrics endpoint's HTTP handling: answers, refusals, and clients that never finish a request. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class MetricsServerTest {
    private static final String BODY = "# TYPE jvhost_devices gauge\njvhost_devices 0\n";
    /** A scrape as Prometheus sends it, asking to close after the answer (the JDK's server kept connections open). */
    private static final String SCRAPE = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

    private static MetricsServer start() throws IOException {
        return MetricsServer.start(MetricsServer.loopbackAddress("127.0.0.1:0"), accept -> Exposition.Body.text(BODY));
    }

    /** Sends {@code request} on a new connection and returns all the server sent until it closed. */
    private static String exchange(MetricsServer server, String request) throws IOException {
        try (Socket s = connect(server)) {
            s.getOutputStream().write(request.getBytes(StandardCharsets.ISO_8859_1));
            return new String(s.getInputStream().readAllBytes(), StandardCharsets.ISO_8859_1);
        }
    }

    private static Socket connect(MetricsServer server) throws IOException {
        Socket s = new Socket();
        s.connect(server.address(), 2000);
        s.setSoTimeout(5000);
        return s;
    }

    @Test
    void aScrapeIsNotDelayedByClientsThatSentPartOfARequestAndWait() throws Exception {
        try (MetricsServer server = start()) {
            List<Socket> stalled = new ArrayList<>();
            try {
                for (int i = 0; i < 5; i++) {
                    Socket s = connect(server);
                    stalled.add(s);
                    s.getOutputStream().write('G'); // one byte of "GET /metrics ...", then nothing
                    s.getOutputStream().flush();
                }
                Thread.sleep(100); // let the server read the byte
                long start = System.nanoTime();
                String response = exchange(server, SCRAPE);
                long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
                System.out.println("metrics: scrape with 5 stalled clients open took " + millis + " ms");
                assertTrue(response.startsWith("HTTP/1.1 200 "), response);
                assertTrue(response.endsWith(BODY), response);
                assertTrue(millis < 1000, "the scrape took " + millis + " ms");
            } catch (SocketTimeoutException e) {
                throw new AssertionError("no answer within 5 s while a client holds one byte of a request", e);
            } finally {
                for (Socket s : stalled) {
                    s.close();
                }
            }
        }
    }

    @Test
    void aConnectionThatDoesNotFinishItsRequestInTimeIsClosed() throws Exception {
        try (MetricsServer server = MetricsServer.start(MetricsServer.loopbackAddress("127.0.0.1:0"), accept -> Exposition.Body.text(BODY), 300);
             Socket s = connect(server)) {
            s.getOutputStream().write("GET /metr".getBytes(StandardCharsets.ISO_8859_1));
            long start = System.nanoTime();
            String response = new String(s.getInputStream().readAllBytes(), StandardCharsets.ISO_8859_1);
            long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            assertTrue(response.startsWith("HTTP/1.1 408 "), response);
            assertTrue(millis >= 200 && millis < 3000, "closed after " + millis + " ms");
        }
    }

    @Test
    void answersGetAndHeadAndRefusesOtherMethodsPathsAndGarbage() throws Exception {
        try (MetricsServer server = start()) {
            String get = exchange(server, "GET /metrics?x=1 HTTP/1.0\r\nAccept: */*\r\n\r\n");
            assertTrue(get.startsWith("HTTP/1.1 200 OK\r\n"), get);
            assertTrue(get.contains("\r\nContent-Type: " + MetricsServer.CONTENT_TYPE + "\r\n"), get);
            assertTrue(get.contains("\r\nContent-Length: " + BODY.length() + "\r\n"), get);
            assertTrue(get.contains("\r\nConnection: close\r\n"), get);
            assertTrue(get.endsWith("\r\n\r\n" + BODY), get);
            String head = exchange(server, "HEAD /metrics HTTP/1.1\r\n\r\n");
            assertTrue(head.startsWith("HTTP/1.1 200 OK\r\n") && head.endsWith("\r\n\r\n"), head);
            String post = exchange(server, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
            assertTrue(post.startsWith("HTTP/1.1 405 ") && post.contains("\r\nAllow: GET, HEAD\r\n"), post);
            assertTrue(exchange(server, "GET / HTTP/1.1\r\n\r\n").startsWith("HTTP/1.1 404 "));
            assertTrue(exchange(server, "hello\r\n\r\n").startsWith("HTTP/1.1 400 "));
            String huge = "GET /metrics HTTP/1.1\r\nX: " + "a".repeat(MetricsServer.MAX_REQUEST_BYTES) + "\r\n\r\n";
            assertTrue(exchange(server, huge).startsWith("HTTP/1.1 431 "));
        }
    }

    @Test
    void aFailingRendererIsA500AndTheServerGoesOn() throws Exception {
        int[] calls = {0};
        try (MetricsServer server = MetricsServer.start(MetricsServer.loopbackAddress("127.0.0.1:0"), accept -> {
            if (calls[0]++ == 0) {
                throw new AssertionError("a device's counters() is broken");
            }
            return Exposition.Body.text(BODY);
        })) {
            assertTrue(exchange(server, "GET /metrics HTTP/1.1\r\n\r\n").startsWith("HTTP/1.1 500 "));
            assertTrue(exchange(server, "GET /metrics HTTP/1.1\r\n\r\n").endsWith(BODY));
        }
    }

    @Test
    void runningOutOfFileDescriptorsPausesAcceptingAndScrapesResumeWhenFdsAreBack() throws Exception {
        try (MetricsServer server = start()) {
            assertTrue(exchange(server, SCRAPE).endsWith(BODY), "warm-up");
            Socket s;
            try (FdLimit limit = FdLimit.exhausted(1)) {
                s = connect(server); // takes the one fd left: the server's accept fails with EMFILE
                Thread.sleep(300);
            }
            try (s) {
                s.getOutputStream().write(SCRAPE.getBytes(StandardCharsets.ISO_8859_1));
                assertTrue(new String(s.getInputStream().readAllBytes(), StandardCharsets.ISO_8859_1).endsWith(BODY));
            } catch (SocketTimeoutException e) {
                throw new AssertionError("no answer within 5 s of the fds coming back", e);
            }
            assertTrue(exchange(server, SCRAPE).endsWith(BODY));
        }
    }

    @Test
    void closeReleasesThePort() throws Exception {
        InetSocketAddress address;
        try (MetricsServer server = start()) {
            address = server.address();
        }
        try (MetricsServer again = MetricsServer.start(address, accept -> Exposition.Body.text(BODY))) {
            assertEquals(address.getPort(), again.address().getPort());
            try (Socket s = connect(again); OutputStream out = s.getOutputStream(); InputStream in = s.getInputStream()) {
                out.write("GET /metrics HTTP/1.1\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1));
                assertTrue(new String(in.readAllBytes(), StandardCharsets.ISO_8859_1).endsWith(BODY));
            }
        }
    }
}
