package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.MessageHeader;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A front-end that sends requests and never reads the replies fills its socket; replies must not wait
 * for room there, or the control loop it shares with other devices stalls. It is cut off after the
 * stall deadline instead.
 */
@Timeout(60)
class UnreadRepliesTest {
    /** How long the hostile front-end floods while the healthy one measures. */
    private static final long FLOOD_MS = 3000;
    /** The healthy device's p99 bound; an idle loop answers in well under a millisecond. */
    private static final long P99_BOUND_MS = 50;

    @TempDir
    Path dir;

    @Test
    void aFrontEndThatNeverReadsItsRepliesDoesNotStallItsControlLoop() throws Exception {
        try (Host host = new Host(1)) {
            // devices go to the two control loops round robin: the first and the third share loop 0
            Path hostileSock = dir.resolve("hostile.sock");
            host.addDevice(host.newContext("hostile"), new RecordingDevice(1, 0), hostileSock, Host.Mode.LISTEN);
            host.addDevice(host.newContext("x"), new RecordingDevice(1, 0), dir.resolve("x.sock"), Host.Mode.LISTEN);
            Path healthySock = dir.resolve("healthy.sock");
            host.addDevice(host.newContext("healthy"), new RecordingDevice(1, 0), healthySock, Host.Mode.LISTEN);

            Flood flood = new Flood(hostileSock);
            Thread t = new Thread(flood, "hostile-front-end");
            long floodStart = System.nanoTime();
            t.start();
            long[] rtt;
            long cutAfterMs;
            try (ScriptedFrontend fe = ScriptedFrontend.connect(healthySock)) {
                rtt = roundTripsMicros(fe, FLOOD_MS);
                // the stall deadline (5 s) cuts the hostile connection; the flood then connects again
                while (flood.connections.get() < 2 && System.nanoTime() - floodStart < 10_000_000_000L) {
                    Thread.sleep(20);
                }
                cutAfterMs = (System.nanoTime() - floodStart) / 1_000_000L;
            } finally {
                flood.stop();
                t.join(5000);
            }
            assertTrue(flood.connections.get() >= 2, "the front-end that never reads was not cut off within "
                    + cutAfterMs + " ms");
            Arrays.sort(rtt);
            long p50 = rtt[rtt.length / 2];
            long p99 = rtt[(int) (rtt.length * 0.99)];
            long max = rtt[rtt.length - 1];
            String figures = String.format("healthy device round trips while another front-end floods unread "
                    + "requests: n=%d p50=%d us p99=%d us max=%d us; hostile connections: %d, requests sent: %d",
                    rtt.length, p50, p99, max, flood.connections.get(), flood.sent.get());
            System.out.println(figures);
            assertTrue(flood.sent.get() > 100, "the hostile front-end sent enough to fill its socket: " + figures);
            assertTrue(p99 < P99_BOUND_MS * 1000, figures);
        }
    }

    /** GET_FEATURES round trips for {@code ms}, in microseconds each. */
    private static long[] roundTripsMicros(ScriptedFrontend fe, long ms) throws IOException {
        long[] out = new long[1 << 20];
        int n = 0;
        long end = System.nanoTime() + ms * 1_000_000L;
        while (System.nanoTime() < end && n < out.length) {
            long t0 = System.nanoTime();
            fe.getFeatures();
            out[n++] = (System.nanoTime() - t0) / 1000;
        }
        return Arrays.copyOf(out, n);
    }

    /** Connects and sends GET_FEATURES without ever reading, reconnecting whenever the back-end hangs up. */
    private static final class Flood implements Runnable {
        private final Path socket;
        private volatile boolean stopped;
        private volatile ScriptedFrontend current;
        final AtomicInteger connections = new AtomicInteger();
        final AtomicInteger sent = new AtomicInteger();

        Flood(Path socket) {
            this.socket = socket;
        }

        @Override
        public void run() {
            while (!stopped) {
                try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
                    current = fe;
                    connections.incrementAndGet();
                    while (!stopped) {
                        fe.send(FrontendRequest.GET_FEATURES.code(), MessageHeader.VERSION, null);
                        sent.incrementAndGet();
                    }
                } catch (IOException e) {
                    // cut off by the back-end (or by stop()): connect again
                }
            }
        }

        void stop() throws IOException {
            stopped = true;
            ScriptedFrontend fe = current;
            if (fe != null) {
                fe.close(); // unblocks a send waiting for room
            }
        }
    }
}
