package org.jvhost.host.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;

/**
 * Real frames both ways between testpmd's virtio_user and a net device's TAP in a {@link NetNamespace},
 * counted at both ends. The TAP must be up with the peer address ({@link NetNamespace#configureTap}).
 */
final class TapTraffic {
    /** Frames the namespace sends towards testpmd: fewer than a TAP queue holds (500), so none is dropped. */
    static final int FRAMES_TO_TESTPMD = 300;

    private TapTraffic() {
    }

    /**
     * testpmd (started in {@code txonly}) sends for 3 s; the TAP's {@code rx_packets} must grow by what
     * testpmd sent. With several queue pairs every queue must have sent.
     */
    static void txonlyReachesTheTap(TestpmdFrontEnd front, NetNamespace ns, String tap, int queues,
                                    ProcessUnderTest jvhost) {
        long tapRx0 = ns.counter(tap, "rx_packets");
        long sent0 = front.portStats().txPackets();
        front.command("start");
        Peers.sleep(Duration.ofSeconds(3));
        List<TestpmdFrontEnd.StreamStats> streams = front.stop();
        long sent = front.portStats().txPackets() - sent0;
        long tapRx = ns.counter(tap, "rx_packets") - tapRx0;
        assertTrue(sent > 10_000, "testpmd sent only " + sent + " frames in 3 s" + jvhost.tail());
        assertTrue(tapRx >= sent * 99 / 100 && tapRx <= sent + 100, "TAP " + tap + " received " + tapRx + " of the "
                + sent + " frames testpmd sent" + jvhost.tail());
        assertEveryQueue(streams, queues, "sent", TestpmdFrontEnd.StreamStats::txPackets);
    }

    /**
     * testpmd in {@code rxonly}; the namespace sends {@link #FRAMES_TO_TESTPMD} UDP datagrams out of the
     * TAP to the guest address, whose neighbour entry is pinned to {@link QemuGuest#GUEST_MAC} (nothing
     * answers ARP). bash's {@code /dev/udp} needs neither python nor ping; each datagram comes from a new
     * socket, so from a new source port: a new flow, which a multi-queue TAP spreads over its queues by
     * hash. All must reach testpmd, and with several queue pairs every queue must have received.
     */
    static void tapFramesReachRxonly(TestpmdFrontEnd front, NetNamespace ns, String tap, int queues,
                                     ProcessUnderTest jvhost, PeerScope scope) {
        ns.exec("ip", "neigh", "replace", ns.guestAddress(), "lladdr", QemuGuest.GUEST_MAC, "dev", tap, "nud", "permanent");
        front.command("set fwd rxonly");
        long tapTx0 = ns.counter(tap, "tx_packets");
        long received0 = front.portStats().rxPackets();
        front.command("start");
        ProcessUnderTest sender = scope.track(ProcessUnderTest.start("sender", ns.inside("timeout", "30", "bash", "-c",
                "for i in $(seq " + FRAMES_TO_TESTPMD + "); do echo jvtest$i > /dev/udp/" + ns.guestAddress()
                        + "/$((20000 + i)) || exit 1; done"), scope.logs()));
        assertEquals(0, sender.awaitExit(Duration.ofSeconds(40)), "UDP sender" + sender.tail());
        Peers.sleep(Duration.ofMillis(500));
        List<TestpmdFrontEnd.StreamStats> streams = front.stop();
        long received = front.portStats().rxPackets() - received0;
        long tapTx = ns.counter(tap, "tx_packets") - tapTx0;
        assertTrue(tapTx >= FRAMES_TO_TESTPMD, "TAP " + tap + " sent " + tapTx + " frames for the "
                + FRAMES_TO_TESTPMD + " datagrams");
        // at least ours: the kernel's own frames (IPv6 router solicitations) may add a few, and those sent
        // while testpmd was in txonly wait in its RX ring until rxonly counts them
        assertTrue(received >= FRAMES_TO_TESTPMD, "testpmd received " + received + " of the " + tapTx
                + " frames the TAP sent" + jvhost.tail());
        assertEveryQueue(streams, queues, "received", TestpmdFrontEnd.StreamStats::rxPackets);
    }

    /** testpmd prints per-stream counters only when there is more than one stream. */
    private static void assertEveryQueue(List<TestpmdFrontEnd.StreamStats> streams, int queues, String what,
                                         java.util.function.ToLongFunction<TestpmdFrontEnd.StreamStats> count) {
        if (queues == 1) {
            return;
        }
        assertEquals(queues, streams.size(), "forwarding streams reported by 'stop': " + streams);
        for (TestpmdFrontEnd.StreamStats s : streams) {
            assertTrue(count.applyAsLong(s) > 0, "queue " + s.rxQueue() + " " + what + " nothing: " + streams);
        }
    }
}
