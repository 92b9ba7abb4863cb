package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.jvhost.engine.instrument.Instrument;
import org.jvhost.engine.instrument.ProtocolTrace;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.spi.DeviceContext;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The protocol trace: every message decoded on one line, switchable at run time, its size capped. */
@Timeout(30)
class ProtocolTraceTest {
    @TempDir
    Path dir;
    Host host;
    Path socket;
    Path trace;
    Instrument instrument;

    @BeforeEach
    void start() throws Exception {
        host = new Host(1);
        socket = dir.resolve("dev.sock");
        trace = dir.resolve("trace.jsonl");
        DeviceContext ctx = host.newContext("rec@" + socket);
        instrument = host.instrument(ctx);
        host.addDevice(ctx, new RecordingDevice(2, 0), socket, Host.Mode.LISTEN);
    }

    @AfterEach
    void stop() {
        host.close();
    }

    /** A well-behaved start of ring 0. */
    static void startRing(ScriptedFrontend fe) throws Exception {
        fe.setOwner();
        fe.setFeatures(fe.getFeatures());
        fe.getProtocolFeatures();
        fe.setProtocolFeatures(ProtocolFeatures.REPLY_ACK | ProtocolFeatures.MQ);
        fe.addRegion(0, 1 << 20);
        fe.setMemTable();
        fe.setVringNum(0, 8);
        fe.setVringBase(0, 0);
        fe.setVringAddrGpa(0, 0x1000, 0x2000, 0x3000);
        fe.setVringCall(0);
        fe.setVringEnable(0, true);
        fe.setVringKick(0);
    }

    @Test
    void everyRequestAndReplyIsOneDecodedJsonLine() throws Exception {
        instrument.configureTrace(trace, ProtocolTrace.Format.JSON, Instrument.DEFAULT_TRACE_MAX_BYTES);
        instrument.setTracing(true);
        long ramUser;
        try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
            startRing(fe);
            ramUser = fe.regions().get(0).userAddress();
            assertEquals(0, fe.getVringBase(0));
        }
        List<String> lines = awaitLines(trace, l -> l.contains("DISCONNECT"));
        // 12 requests, 12 replies (4 with payloads, 8 REPLY_ACKs after SET_PROTOCOL_FEATURES), GET_VRING_BASE both ways, the end
        assertEquals(1 + 4 + 2 + 7 + 7 + 2 + 1, lines.size(), String.join("\n", lines));
        assertTrue(lines.get(0).matches("\\{\"time\":\"[^\"]+\",\"conn\":1,\"dir\":\"in\",\"request\":\"SET_OWNER\","
                + "\"flags\":\\[\"VERSION_1\"\\],\"size\":0,\"fds\":0,\"payload\":\\{\\}}"), lines.get(0));
        assertContains(lines, "\"dir\":\"out\",\"request\":\"GET_FEATURES\"", "\"features\":[\"NET_F_MAC\",\"LOG_ALL\","
                + "\"RING_INDIRECT_DESC\",\"RING_EVENT_IDX\",\"VHOST_USER_PROTOCOL_FEATURES\",\"VERSION_1\",\"RING_PACKED\"]");
        assertContains(lines, "\"dir\":\"in\",\"request\":\"SET_PROTOCOL_FEATURES\"", "\"features\":[\"MQ\",\"REPLY_ACK\"]");
        assertContains(lines, "\"request\":\"SET_MEM_TABLE\",\"flags\":[\"VERSION_1\",\"NEED_REPLY\"]", "\"fds\":1",
                "\"regions\":[{\"guest_phys_addr\":\"0x0\",\"memory_size\":\"0x100000\",\"userspace_addr\":\"0x"
                        + Long.toHexString(ramUser) + "\",\"mmap_offset\":\"0x0\"}]");
        assertContains(lines, "\"request\":\"SET_VRING_ADDR\"", "\"index\":0", "\"desc_user_addr\":\"0x"
                + Long.toHexString(ramUser + 0x1000) + "\"", "\"avail_user_addr\":\"0x" + Long.toHexString(ramUser + 0x2000));
        assertContains(lines, "\"request\":\"SET_VRING_KICK\"", "\"fds\":1", "\"payload\":{\"index\":0,\"nofd\":false}");
        assertContains(lines, "\"dir\":\"out\",\"request\":\"SET_VRING_KICK\"", "\"flags\":[\"VERSION_1\",\"REPLY\"]",
                "\"payload\":{\"ack\":\"ok\"}");
        assertContains(lines, "\"dir\":\"out\",\"request\":\"GET_VRING_BASE\"", "\"payload\":{\"index\":0,\"num\":0}");
    }

    @Test
    void textFormatAndSwitchingOffAndOnAtRunTime() throws Exception {
        instrument.configureTrace(trace, ProtocolTrace.Format.TEXT, Instrument.DEFAULT_TRACE_MAX_BYTES);
        instrument.setTracing(true);
        try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
            fe.getFeatures();
            instrument.setTracing(false);
            fe.getProtocolFeatures(); // not traced (its reply says it was handled before tracing resumes)
            instrument.setTracing(true);
            fe.getFeatures();
        }
        List<String> lines = awaitLines(trace, l -> l.contains("DISCONNECT"));
        assertEquals(5, lines.size(), String.join("\n", lines)); // GET_FEATURES twice both ways, the end
        assertTrue(lines.get(0).matches("\\S+ conn=1 <- GET_FEATURES flags=\\[VERSION_1\\] size=0 fds=0 payload=\\{\\}"),
                lines.get(0));
        assertTrue(lines.get(3).endsWith(" conn=1 -> GET_FEATURES flags=[VERSION_1,REPLY] size=8 payload={features="
                + "[NET_F_MAC,LOG_ALL,RING_INDIRECT_DESC,RING_EVENT_IDX,VHOST_USER_PROTOCOL_FEATURES,VERSION_1,RING_PACKED]}"), lines.get(3));
        assertTrue(lines.get(4).endsWith(" conn=1 -- DISCONNECT reason=connection closed"), lines.get(4));
        assertFalse(String.join("\n", lines).contains("GET_PROTOCOL_FEATURES"), "switched off: not traced");
    }

    @Test
    void theFileRotatesAtItsCap() throws Exception {
        instrument.configureTrace(trace, ProtocolTrace.Format.JSON, 2048);
        instrument.setTracing(true);
        try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
            for (int i = 0; i < 40; i++) {
                fe.getFeatures();
            }
        }
        awaitLines(trace, l -> l.contains("DISCONNECT"));
        Path previous = dir.resolve("trace.jsonl.1");
        assertTrue(Files.exists(previous), "rotated to trace.jsonl.1");
        assertTrue(Files.size(trace) <= 2048 && Files.size(previous) <= 2048,
                Files.size(trace) + " and " + Files.size(previous) + " bytes");
    }

    /** The cost of tracing: round trips with the trace off and on (printed), bounded per message. */
    @Test
    void aTracedMessageCostsLittle() throws Exception {
        instrument.configureTrace(trace, ProtocolTrace.Format.JSON, Instrument.DEFAULT_TRACE_MAX_BYTES);
        try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
            roundTrips(fe, 2000); // warm-up
            long off = roundTrips(fe, 2000);
            instrument.setTracing(true);
            long on = roundTrips(fe, 2000);
            System.out.printf("GET_FEATURES round trip: %d ns untraced, %d ns traced (2 lines each)%n", off, on);
            assertTrue(on - off < 500_000, "tracing adds " + (on - off) + " ns to a round trip");
        }
    }

    /** Mean nanoseconds per GET_FEATURES round trip over {@code n}. */
    private static long roundTrips(ScriptedFrontend fe, int n) throws Exception {
        long start = System.nanoTime();
        for (int i = 0; i < n; i++) {
            fe.getFeatures();
        }
        return (System.nanoTime() - start) / n;
    }

    @Test
    void tracingWithoutAFileIsRefusedByName() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> instrument.setTracing(true));
        assertEquals("rec@" + socket + " has no trace file: give the device trace=PATH", e.getMessage());
    }

    private static void assertContains(List<String> lines, String key, String... parts) {
        for (String l : lines) {
            if (l.contains(key)) {
                for (String p : parts) {
                    assertTrue(l.contains(p), "'" + p + "' missing in " + l);
                }
                return;
            }
        }
        throw new AssertionError("no line with " + key + " in\n" + String.join("\n", lines));
    }

    /** The file's lines once one matches {@code last} (the connection's end is traced on the control loop). */
    static List<String> awaitLines(Path file, java.util.function.Predicate<String> last) throws Exception {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (true) {
            List<String> lines = Files.exists(file) ? Files.readAllLines(file) : List.of();
            if (lines.stream().anyMatch(last) || System.nanoTime() > deadline) {
                return lines;
            }
            Thread.sleep(10);
        }
    }
}
