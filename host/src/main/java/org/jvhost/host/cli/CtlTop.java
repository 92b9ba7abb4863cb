package org.jvhost.host.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.jvhost.host.control.ControlClient;
import org.jvhost.host.control.Json;

/**
 * {@code jvhost ctl top}: the {@code counters} request once per interval, shown as rates per device and
 * per queue: frames per second and bits per second each way, drops and errors per second. A device's
 * row sums its queues' errors with its own; its frames, bytes and drops are the device type's counters.
 */
final class CtlTop {
    /** Indices into a row's totals. */
    private static final int RX_FRAMES = 0;
    private static final int TX_FRAMES = 1;
    private static final int RX_BYTES = 2;
    private static final int TX_BYTES = 3;
    private static final int DROPS = 4;
    private static final int ERRORS = 5;
    private static final String CLEAR_SCREEN = "\033[H\033[2J";

    private CtlTop() {
    }

    /**
     * Shows rates every {@code intervalMillis} until {@code count} screens were shown (0: until the
     * process is stopped) or the control socket fails.
     *
     * @throws IOException naming the socket if a request fails
     */
    static void run(Path control, String device, long intervalMillis, int count, boolean clear, PrintWriter out)
            throws IOException, InterruptedException {
        String request = device == null ? "counters" : "counters " + device;
        Map<String, long[]> previous = totals(ask(control, request));
        long previousAt = System.nanoTime();
        for (int shown = 0; count == 0 || shown < count; shown++) {
            Thread.sleep(intervalMillis);
            Map<String, long[]> now = totals(ask(control, request));
            long at = System.nanoTime();
            if (clear) {
                out.print(CLEAR_SCREEN);
            }
            render(previous, now, (at - previousAt) / (double) TimeUnit.SECONDS.toNanos(1), out);
            out.flush();
            previous = now;
            previousAt = at;
        }
    }

    private static Map<?, ?> ask(Path control, String request) throws IOException {
        Map<?, ?> r = (Map<?, ?>) Json.parse(ControlClient.request(control, request));
        if (!Boolean.TRUE.equals(r.get("ok"))) {
            throw new IOException(String.valueOf(r.get("error")));
        }
        return r;
    }

    /** A {@code counters} response as totals per row: {@code DEVICE} and {@code DEVICE queue N}. */
    static Map<String, long[]> totals(Map<?, ?> response) {
        Map<String, long[]> rows = new LinkedHashMap<>();
        for (Object o : (List<?>) response.get("devices")) {
            Map<?, ?> d = (Map<?, ?>) o;
            long[] device = row((Map<?, ?>) d.get("counters"), number(d.get("errors")));
            rows.put(String.valueOf(d.get("name")), device);
            for (Object q : (List<?>) d.get("queues")) {
                Map<?, ?> m = (Map<?, ?>) q;
                long[] queue = row((Map<?, ?>) m.get("counters"), number(m.get("errors")));
                device[ERRORS] += queue[ERRORS];
                rows.put(d.get("name") + " queue " + m.get("index"), queue);
            }
        }
        return rows;
    }

    private static long[] row(Map<?, ?> counters, long errors) {
        long[] t = new long[6];
        counters.forEach((k, v) -> {
            String name = String.valueOf(k);
            long n = number(v);
            switch (name) {
                case "rx_frames": t[RX_FRAMES] = n; break;
                case "tx_frames": t[TX_FRAMES] = n; break;
                case "rx_bytes": t[RX_BYTES] = n; break;
                case "tx_bytes": t[TX_BYTES] = n; break;
                default:
                    if (name.matches("(rx|tx)_dropped(_.*)?")) {
                        t[DROPS] += n;
                    }
            }
        });
        t[ERRORS] = errors;
        return t;
    }

    private static long number(Object o) {
        return o instanceof Long l ? l : 0;
    }

    /** One screen: the rates between {@code before} and {@code after}, {@code seconds} apart. */
    static void render(Map<String, long[]> before, Map<String, long[]> after, double seconds, PrintWriter out) {
        out.printf("%-32s %12s %12s %14s %14s %10s %10s%n", "DEVICE / QUEUE", "RX pps", "TX pps", "RX bit/s",
                "TX bit/s", "drops/s", "errors/s");
        after.forEach((name, now) -> {
            long[] was = before.getOrDefault(name, now); // new since the last screen: no rate yet
            out.printf("%-32s %12s %12s %14s %14s %10s %10s%n", name.contains(" queue ") ? "  " + name : name,
                    rate(now, was, RX_FRAMES, seconds, 1), rate(now, was, TX_FRAMES, seconds, 1),
                    rate(now, was, RX_BYTES, seconds, 8), rate(now, was, TX_BYTES, seconds, 8),
                    rate(now, was, DROPS, seconds, 1), rate(now, was, ERRORS, seconds, 1));
        });
    }

    /** A rate with a unit prefix (k, M, G); a counter that went back (the device restarted) shows as 0. */
    private static String rate(long[] now, long[] was, int i, double seconds, int scale) {
        double r = Math.max(0, now[i] - was[i]) * scale / seconds;
        if (r >= 1e9) {
            return String.format("%.2fG", r / 1e9);
        }
        if (r >= 1e6) {
            return String.format("%.2fM", r / 1e6);
        }
        if (r >= 1e4) {
            return String.format("%.1fk", r / 1e3);
        }
        return String.format("%.0f", r);
    }
}
