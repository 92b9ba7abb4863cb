package org.jvhost.host.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.jvhost.host.it.TestpmdFrontEnd.Interval;
import org.jvhost.host.it.TestpmdFrontEnd.PortStats;
import org.jvhost.host.it.TestpmdFrontEnd.StreamStats;

/**
 * DPDK testpmd's {@code virtio_user} front-end against the back-end under test (a reflector): frames
 * the front-end transmits must come back on its receive queues, at speed, without errors, for as long
 * as traffic runs.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class TestpmdIT {

    /** Frames per queue that must make the round trip in a few seconds: far above the 128 injected. */
    private static final long MIN_FRAMES = 10_000;

    @RegisterExtension
    final PeerScope scope = new PeerScope();
    private final Backend backend = Backend.selected();
    private ProcessUnderTest back;
    private TestpmdFrontEnd front;

    @BeforeEach
    void assumePeers() {
        Peers.assumeInstalled(Peers.TESTPMD, "dpdk-dev");
        backend.assumeAvailable();
    }

    /**
     * {@code io} forwarding with {@code start tx_first 4}: 4 bursts of 32 frames per queue circulate
     * front-end -> back-end -> front-end. Both counters must keep growing between two samples (a stall,
     * e.g. a lost kick or a missed call, stops them) and nothing may come back that was not sent
     * ({@link Interval#assertFlowing}). virtio_user and the loopback device negotiate IN_ORDER, so each
     * TX batch comes back as one used element (jvhost's log names the rings "used in order").
     */
    @ParameterizedTest(name = "queues={0}")
    @ValueSource(ints = {1, 2})
    void ioRoundTripKeepsFlowing(int queues) {
        Path sock = scope.sockets().resolve("vhost.sock");
        back = scope.track(backend.start(backend.name(), sock, queues, Backend.Role.LISTEN, scope.logs()));
        int mark = back.mark();
        front = scope.track(TestpmdFrontEnd.start("testpmd", sock, queues, "io", false, scope.logs()));
        if (backend instanceof JvhostBackend) {
            // virtio_user acks IN_ORDER (in_order=1 by default), which the loopback device offers
            back.await(java.util.regex.Pattern.compile("queue " + (2 * queues - 1)
                    + " starts as a split ring of 256 used in order"), mark, Duration.ofSeconds(10), front.process());
        }

        front.startRoundTrip();
        Interval interval = front.sample(Duration.ofSeconds(2));
        List<StreamStats> streams = front.stop();

        assertFlowing(interval, queues);
        if (queues > 1) {
            // testpmd prints per-stream counters only when there is more than one stream.
            assertEquals(queues, streams.size(), "forwarding streams reported by 'stop'");
            for (StreamStats s : streams) {
                assertTrue(s.rxPackets() >= MIN_FRAMES, "queue " + s.rxQueue() + " received only " + s.rxPackets()
                        + " frames: the back-end does not serve every queue pair");
            }
        }
        assertTrue(back.isAlive(), backend.name() + " exited during traffic" + back.tail());
    }

    /** The same round trip when virtio_user listens ({@code server=1}) and the back-end connects. */
    @Test
    void ioRoundTripWhenBackendConnects() {
        Path sock = scope.sockets().resolve("vhost.sock");
        front = scope.track(TestpmdFrontEnd.start("testpmd", sock, 1, "io", true, scope.logs()));
        Peers.awaitNewFile(sock, null, Duration.ofSeconds(30), front.process());
        back = scope.track(backend.start(backend.name(), sock, 1, Backend.Role.CONNECT, scope.logs()));
        front.awaitPrompt(back);

        front.startRoundTrip();
        Interval interval = front.sample(Duration.ofSeconds(2));
        front.stop();

        assertFlowing(interval, 1);
    }

    /**
     * {@code txonly} floods the back-end's dequeue path while nobody drains the receive queue, so the
     * back-end meets a full RX ring; {@code rxonly} then collects what the back-end reflected; finally
     * an {@code io} round trip proves the back-end recovered from the back-pressure. (txonly never
     * polls RX and rxonly never transmits, so each phase asserts only its own direction.)
     */
    @Test
    void txonlyThenRxonlyMoveFramesBothWaysAndSurviveBackPressure() {
        Path sock = scope.sockets().resolve("vhost.sock");
        back = scope.track(backend.start(backend.name(), sock, 1, Backend.Role.LISTEN, scope.logs()));
        front = scope.track(TestpmdFrontEnd.start("testpmd", sock, 1, "txonly", false, scope.logs()));

        txonlyThenRxonly("", Duration.ofSeconds(3));

        front.command("set fwd io");
        front.startRoundTrip();
        Interval interval = front.sample(Duration.ofSeconds(2));
        front.stop();
        assertFlowing(interval, 1);
    }

    /**
     * Packed rings ({@code packed_vq=1}, issue 15) with 2 queue pairs: txonly floods the dequeue path,
     * rxonly collects what came back, and an io round trip keeps flowing on both pairs. jvhost must
     * have started its rings as packed rings used in order (its log says so), not fallen back to split
     * ones: virtio_user acks IN_ORDER, so a TX batch comes back as one used descriptor.
     */
    @Test
    void packedRingsInTxonlyRxonlyAndIo() {
        Path sock = scope.sockets().resolve("vhost.sock");
        back = scope.track(backend.start(backend.name(), sock, 2, Backend.Role.LISTEN, scope.logs()));
        int mark = back.mark();
        front = scope.track(TestpmdFrontEnd.start("testpmd", sock, 2, "txonly", false, scope.logs(),
                TestpmdFrontEnd.NO_HUGE, ",packed_vq=1"));
        if (backend instanceof JvhostBackend) {
            back.await(java.util.regex.Pattern.compile("queue 3 starts as a packed ring of 256 used in order"), mark,
                    Duration.ofSeconds(10), front.process());
        }

        txonlyThenRxonly("packed ", Duration.ofSeconds(2));

        front.command("set fwd io");
        front.startRoundTrip();
        Interval interval = front.sample(Duration.ofSeconds(2));
        List<StreamStats> streams = front.stop();
        assertFlowing(interval, 2);
        for (StreamStats s : streams) {
            assertTrue(s.rxPackets() >= MIN_FRAMES, "packed: queue " + s.rxQueue() + " received only "
                    + s.rxPackets() + " frames");
        }
        assertTrue(back.isAlive(), backend.name() + " exited during packed-ring traffic" + back.tail());
    }

    /**
     * txonly for {@code txFor} (the back-end must take at least {@link #MIN_FRAMES}, without TX errors),
     * then rxonly for 2 s: some of what was sent comes back, never more, without RX errors.
     */
    private void txonlyThenRxonly(String label, Duration txFor) {
        PortStats beforeTx = front.portStats();
        front.command("start");
        Peers.sleep(txFor);
        front.stop();
        PortStats afterTx = front.portStats();
        long sent = afterTx.txPackets() - beforeTx.txPackets();
        assertTrue(sent >= MIN_FRAMES, label + "txonly: the back-end consumed only " + sent + " frames in "
                + txFor.toSeconds() + " s" + back.tail());
        assertEquals(0, afterTx.txErrors(), label + "txonly: TX-errors");

        front.command("set fwd rxonly");
        front.command("start");
        Peers.sleep(Duration.ofSeconds(2));
        front.stop();
        PortStats afterRx = front.portStats();
        long received = afterRx.rxPackets() - afterTx.rxPackets();
        assertTrue(received > 0, label + "rxonly: none of the " + sent + " transmitted frames came back" + back.tail());
        assertTrue(received <= sent, label + "rxonly: received " + received + " frames but only " + sent + " were sent");
        assertEquals(0, afterRx.rxErrors(), label + "rxonly: RX-errors");
    }

    private void assertFlowing(Interval interval, int queues) {
        interval.assertFlowing(MIN_FRAMES * queues, backend.name() + ", " + queues + " queue pair(s); ", back);
    }
}
