package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.EOFException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.jvhost.engine.instrument.FaultPlan;
import org.jvhost.engine.instrument.Instrument;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.engine.protocol.MessageHeader;
import org.jvhost.spi.DeviceContext;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Injected faults: each one a real back-end may legally commit, each counted, the random mode reproducible. */
@Timeout(30)
class FaultInjectionTest {
    @TempDir
    Path dir;
    private final List<Host> hosts = new ArrayList<>();

    @AfterEach
    void stop() {
        hosts.forEach(Host::close);
    }

    /** A host serving a 2-queue recording device on {@code name}.sock with {@code plan}; its instrument. */
    private Instrument serve(String name, FaultPlan plan) throws IOException {
        Host host = new Host(1);
        hosts.add(host);
        Path socket = dir.resolve(name + ".sock");
        DeviceContext ctx = host.newContext(name);
        Instrument instrument = host.instrument(ctx);
        instrument.setFaults(plan);
        host.addDevice(ctx, new RecordingDevice(2, 0), socket, Host.Mode.LISTEN);
        return instrument;
    }

    @Test
    void theFirstConnectionIsDroppedAfterMessageNAndTheNextIsLeftAlone() throws Exception {
        Instrument instrument = serve("drop", new FaultPlan(3, 0, Set.of(), 0, 0, null));
        try (ScriptedFrontend fe = ScriptedFrontend.connect(dir.resolve("drop.sock"))) {
            fe.setOwner();
            fe.getFeatures();
            assertThrows(EOFException.class, fe::getProtocolFeatures, "dropped after request 3");
        }
        try (ScriptedFrontend fe = ScriptedFrontend.connect(dir.resolve("drop.sock"))) {
            negotiate(fe);
            assertEquals(2, fe.getQueueNum(), "the reconnected front-end is served");
        }
        assertEquals(1, instrument.faultsInjected());
    }

    @Test
    void aSweepDropsConnectionKAfterItsKthRequest() throws Exception {
        Instrument instrument = serve("sweep", new FaultPlan(0, 2, Set.of(), 0, 0, null));
        try (ScriptedFrontend fe = ScriptedFrontend.connect(dir.resolve("sweep.sock"))) {
            assertThrows(EOFException.class, fe::getFeatures, "connection 1 dropped after request 1");
        }
        try (ScriptedFrontend fe = ScriptedFrontend.connect(dir.resolve("sweep.sock"))) {
            fe.getFeatures();
            assertThrows(EOFException.class, fe::getFeatures, "connection 2 dropped after request 2");
        }
        try (ScriptedFrontend fe = ScriptedFrontend.connect(dir.resolve("sweep.sock"))) {
            for (int i = 0; i < 5; i++) {
                fe.getFeatures(); // connection 3 is left alone
            }
        }
        assertEquals(2, instrument.faultsInjected());
    }

    @Test
    void aNamedRequestIsRefusedWithAReplyAckFailure() throws Exception {
        Instrument instrument = serve("nack", new FaultPlan(0, 0, Set.of(FrontendRequest.SET_MEM_TABLE), 0, 0, null));
        try (ScriptedFrontend fe = ScriptedFrontend.connect(dir.resolve("nack.sock"))) {
            negotiate(fe);
            fe.addRegion(0, 1 << 20);
            assertEquals(1, assertThrows(ScriptedFrontend.RefusedException.class, fe::setMemTable).ack());
            fe.setVringNum(0, 8); // the connection goes on
        }
        assertEquals(1, instrument.faultsInjected());
        assertThrows(IllegalArgumentException.class,
                () -> new FaultPlan(0, 0, Set.of(FrontendRequest.GET_FEATURES), 0, 0, null), "its reply is its answer");
    }

    @Test
    void repliesAreDelayed() throws Exception {
        serve("slow", new FaultPlan(0, 0, Set.of(), 200, 0, null));
        try (ScriptedFrontend fe = ScriptedFrontend.connect(dir.resolve("slow.sock"))) {
            long start = System.nanoTime();
            fe.getFeatures();
            long ms = (System.nanoTime() - start) / 1_000_000;
            assertTrue(ms >= 200, "GET_FEATURES answered after " + ms + " ms");
        }
    }

    /**
     * A delayed reply never holds the control thread: another device on the same control loop answers
     * at once while the delayed one waits (the delay used to be a sleep on that thread).
     */
    @Test
    void aDelayedReplyDoesNotHoldTheOtherDevicesOfItsControlLoop() throws Exception {
        Host host = new Host(1);
        hosts.add(host);
        DeviceContext slow = host.newContext("slow");
        host.instrument(slow).setFaults(new FaultPlan(0, 0, Set.of(), 1000, 0, null));
        host.addDevice(slow, new RecordingDevice(2, 0), dir.resolve("slow.sock"), Host.Mode.LISTEN);
        assertEquals(2, Host.CONTROL_THREADS);
        DeviceContext spacer = host.newContext("spacer"); // devices take the control loops in turn
        host.addDevice(spacer, new RecordingDevice(2, 0), dir.resolve("spacer.sock"), Host.Mode.LISTEN);
        DeviceContext quick = host.newContext("quick");
        host.addDevice(quick, new RecordingDevice(2, 0), dir.resolve("quick.sock"), Host.Mode.LISTEN);
        try (ScriptedFrontend slowFe = ScriptedFrontend.connect(dir.resolve("slow.sock"));
             ScriptedFrontend quickFe = ScriptedFrontend.connect(dir.resolve("quick.sock"))) {
            slowFe.send(FrontendRequest.GET_FEATURES.code(), MessageHeader.VERSION, null);
            Thread.sleep(100); // the shared control loop has taken the slow request
            long start = System.nanoTime();
            for (int i = 0; i < 5; i++) {
                quickFe.getFeatures();
            }
            long ms = (System.nanoTime() - start) / 1_000_000;
            assertTrue(ms < 500, "5 round trips of a device on the same control loop took " + ms
                    + " ms while another device's reply was delayed by 1000 ms");
            long slowStart = System.nanoTime();
            slowFe.readReply();
            assertTrue((System.nanoTime() - slowStart) / 1_000_000 >= 500, "the delayed reply waited its turn");
        }
    }

    @Test
    void aSmallerQueueCountIsReportedAndRingsBeyondItAreRefused() throws Exception {
        Instrument instrument = serve("mq", new FaultPlan(0, 0, Set.of(), 0, 1, null));
        try (ScriptedFrontend fe = ScriptedFrontend.connect(dir.resolve("mq.sock"))) {
            negotiate(fe);
            assertEquals(1, fe.getQueueNum());
            fe.setVringNum(0, 8);
            assertThrows(ScriptedFrontend.RefusedException.class, () -> fe.setVringNum(1, 8));
        }
        assertEquals(2, instrument.faultsInjected());
    }

    /** The same seed and the same front-end give the same faults: a failure reproduces from the seed. */
    @Test
    void randomModeIsReproducibleFromItsSeed() throws Exception {
        List<String> first = randomRun("r1", 42);
        List<String> second = randomRun("r2", 42);
        assertEquals(first, second);
        assertTrue(first.stream().anyMatch(s -> !s.equals("ok")), "some fault in " + first);
        List<String> other = randomRun("r3", 7);
        assertTrue(!other.equals(first), "another seed, other faults: " + other);
    }

    /** Up to 60 acked requests under seed {@code seed}: what became of each ("ok", "refused", "dropped"). */
    private List<String> randomRun(String name, long seed) throws Exception {
        serve(name, new FaultPlan(0, 0, Set.of(), 0, 0, seed));
        List<String> outcome = new ArrayList<>();
        try (ScriptedFrontend fe = ScriptedFrontend.connect(dir.resolve(name + ".sock"))) {
            fe.getProtocolFeatures();
            fe.setProtocolFeatures(ProtocolFeatures.REPLY_ACK);
            for (int i = 0; i < 60; i++) {
                try {
                    fe.setVringNum(0, 8);
                    outcome.add("ok");
                } catch (ScriptedFrontend.RefusedException e) {
                    outcome.add("refused");
                } catch (EOFException e) {
                    outcome.add("dropped");
                    break;
                }
            }
        }
        return outcome;
    }

    private static void negotiate(ScriptedFrontend fe) throws Exception {
        fe.setFeatures(fe.getFeatures());
        fe.getProtocolFeatures();
        fe.setProtocolFeatures(ProtocolFeatures.REPLY_ACK | ProtocolFeatures.MQ);
    }
}
