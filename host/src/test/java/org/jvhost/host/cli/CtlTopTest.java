package org.jvhost.host.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.jvhost.host.control.Json;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@code jvhost ctl top}: rates from two {@code counters} answers. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class CtlTopTest {

    private static Map<String, long[]> totals(long frames, long bytes, long drops, long deviceErrors, long queueErrors) {
        return CtlTop.totals((Map<?, ?>) Json.parse("{\"ok\":true,\"devices\":[{\"name\":\"vm1\",\"errors\":" + deviceErrors
                + ",\"counters\":{\"rx_frames\":" + frames + ",\"tx_frames\":" + 2 * frames + ",\"rx_bytes\":" + bytes
                + ",\"tx_bytes\":" + 2 * bytes + ",\"rx_dropped_no_buffer\":" + drops + ",\"tx_dropped_malformed\":1},"
                + "\"queues\":[{\"index\":0,\"active\":true,\"kicks\":1,\"calls\":1,\"errors\":" + queueErrors
                + ",\"counters\":{\"rx_frames\":" + frames + ",\"rx_bytes\":" + bytes + "}}]}]}"));
    }

    @Test
    void ratesPerDeviceAndQueueOverTheInterval() {
        StringWriter out = new StringWriter();
        CtlTop.render(totals(1_000, 100_000, 5, 0, 1), totals(3_000_000, 100_000 + 250_000_000L, 25, 1, 3), 2.0,
                new PrintWriter(out, true));
        String[] lines = out.toString().split("\n");
        assertEquals(3, lines.length, out.toString());
        assertEquals("DEVICE / QUEUE                         RX pps       TX pps       RX bit/s       TX bit/s    "
                + "drops/s   errors/s", lines[0]);
        // (3,000,000 - 1,000) / 2 s = 1.50M pps; 250 MB / 2 s * 8 = 1.00G bit/s; 20 drops / 2 s; (1+3) - (0+1) errors
        assertEquals("vm1                                     1.50M        3.00M          1.00G          2.00G         "
                + "10          2", lines[1]);
        assertEquals("  vm1 queue 0                           1.50M            0          1.00G              0          "
                + "0          1", lines[2]);
    }
}
