package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Path;
import java.util.EnumMap;
import java.util.Map;
import org.jvhost.engine.instrument.Instrument;
import org.jvhost.engine.instrument.SpecRule;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Strict mode: a scripted front-end commits each spec violation on purpose and each is reported exactly
 * once, under its rule; a clean front-end (multiqueue, stop, reconnect) is reported zero times.
 */
@Timeout(30)
class StrictModeTest {
    /** The rules of the control path (the data path's are DataPathStrictTest's). */
    private static final long CONTROL_PATH_RULES = 6;
    @TempDir
    Path dir;
    Host host;
    Path socket;
    Instrument instrument;
    DeviceContext ctx;

    @BeforeEach
    void start() throws Exception {
        host = new Host(1);
        socket = dir.resolve("dev.sock");
        ctx = host.newContext("rec@" + socket);
        instrument = host.instrument(ctx);
        instrument.setStrict(true);
        host.addDevice(ctx, new RecordingDevice(2, 0), socket, Host.Mode.LISTEN);
    }

    @AfterEach
    void stop() {
        host.close();
    }

    @Test
    void aCleanFrontendIsNeverReported() throws Exception {
        for (int connection = 0; connection < 2; connection++) { // and a reconnect
            try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
                negotiate(fe);
                fe.addRegion(0, 1 << 20);
                fe.setMemTable();
                startRing(fe, 0, 0x10000);
                startRing(fe, 1, 0x20000);
                assertEquals(0, fe.getVringBase(0));
                assertEquals(0, fe.getVringBase(1));
                startRing(fe, 0, 0x10000); // restarted after a stop, as QEMU does on a guest reset
            }
        }
        assertEquals(0, instrument.violations(), String.valueOf(instrument.counters()));
        assertEquals(0L, host.snapshot(ctx).counters().get(Instrument.VIOLATIONS), "in the counters, at zero");
    }

    @Test
    void eachViolationIsReportedOnceUnderItsRule() throws Exception {
        Map<SpecRule, Long> expected = new EnumMap<>(SpecRule.class);
        try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
            long offered = negotiate(fe);

            assertThrows(ScriptedFrontend.RefusedException.class, () -> fe.setFeatures(offered | VirtioFeatures.ACCESS_PLATFORM));
            expect(expected, SpecRule.FEATURES_NOT_OFFERED);

            assertThrows(ScriptedFrontend.RefusedException.class,
                    () -> fe.setProtocolFeatures(ProtocolFeatures.REPLY_ACK | ProtocolFeatures.BACKEND_REQ));
            expect(expected, SpecRule.PROTOCOL_FEATURES_NOT_OFFERED);

            fe.setVringNum(0, 8);
            fe.setVringAddr(0, 0x1000, 0x3000, 0x2000); // no memory table yet
            expect(expected, SpecRule.RING_BEFORE_MEM_TABLE);

            setVringNumAllowingRefusal(fe, 1, 100);
            expect(expected, SpecRule.VRING_NUM_NOT_POWER_OF_2);

            ScriptedFrontend.GuestRegion ram = fe.addRegion(0, 1 << 20);
            fe.setMemTable();
            fe.setVringNum(1, 8);
            // the used ring's last bytes run past the end of the only region
            fe.setVringAddr(1, ram.userAddress(), ram.userAddress() + ram.size() - 16, ram.userAddress() + 0x1000);
            expect(expected, SpecRule.RING_OUTSIDE_MEMORY);

            fe.setVringAddr(0, ram.userAddress(), ram.userAddress() + 0x2000, ram.userAddress() + 0x1000);
            fe.setVringKick(0); // no SET_VRING_CALL for ring 0
            expect(expected, SpecRule.MISSING_VRING_CALL);
        }
        assertEquals(CONTROL_PATH_RULES, expected.size(), "every control-path rule committed once");
        Map<String, Long> counters = host.snapshot(ctx).counters();
        assertEquals(CONTROL_PATH_RULES, counters.get(Instrument.VIOLATIONS));
        for (SpecRule r : expected.keySet()) {
            assertEquals(1L, counters.get("spec_violation." + r.id()), r.id());
        }
    }

    @Test
    void offMeansNoReportAndNoCounters() throws Exception {
        instrument.setStrict(false);
        try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
            fe.setVringAddr(0, 0x1000, 0x3000, 0x2000); // before any memory table
            fe.getFeatures(); // its reply: the request before was handled
        }
        assertEquals(0, instrument.violations());
        assertEquals(null, host.snapshot(ctx).counters().get(Instrument.VIOLATIONS));
    }

    /** GET_FEATURES, SET_FEATURES, GET/SET_PROTOCOL_FEATURES with REPLY_ACK, as QEMU starts; the offered features. */
    private static long negotiate(ScriptedFrontend fe) throws Exception {
        fe.setOwner();
        long offered = fe.getFeatures();
        fe.setFeatures(offered);
        long protocol = fe.getProtocolFeatures();
        fe.setProtocolFeatures(protocol & (ProtocolFeatures.REPLY_ACK | ProtocolFeatures.MQ));
        return offered;
    }

    /** A well-behaved ring start: NUM, BASE, ADDR inside the memory, CALL, ENABLE, KICK. */
    private static void startRing(ScriptedFrontend fe, int queue, long gpa) throws Exception {
        fe.setVringNum(queue, 8);
        fe.setVringBase(queue, 0);
        fe.setVringAddrGpa(queue, gpa, gpa + 0x1000, gpa + 0x2000);
        fe.setVringCall(queue);
        fe.setVringEnable(queue, true);
        fe.setVringKick(queue);
    }

    private static void setVringNumAllowingRefusal(ScriptedFrontend fe, int queue, int num) throws Exception {
        try {
            fe.setVringNum(queue, num);
        } catch (ScriptedFrontend.RefusedException e) {
            // the back-end may refuse it too; strict mode reports it either way
        }
    }

    /** {@code rule} was just broken: its count and only its count went up by one. */
    private void expect(Map<SpecRule, Long> expected, SpecRule rule) {
        expected.merge(rule, 1L, Long::sum);
        for (SpecRule r : SpecRule.values()) {
            assertEquals(expected.getOrDefault(r, 0L), instrument.violations(r), "after " + rule + ": " + r);
        }
    }
}
