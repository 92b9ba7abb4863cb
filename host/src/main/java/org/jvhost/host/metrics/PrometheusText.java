package org.jvhost.host.metrics;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.jvhost.engine.server.DeviceSnapshot;
import org.jvhost.engine.server.DeviceSnapshot.QueueSnapshot;

/**
 * Renders device snapshots in the Prometheus text exposition format. Device counters that follow the
 * naming convention {@code rx_frames}/{@code tx_frames}, {@code rx_bytes}/{@code tx_bytes} and
 * {@code rx_dropped_REASON}/{@code tx_dropped_REASON} become {@code jvhost_*_frames_total},
 * {@code _bytes_total} and {@code _drops_total} with {@code direction} (and {@code reason}) labels;
 * any other device counter is {@code jvhost_device_counter_total{counter="NAME"}}.
 */
public final class PrometheusText {
    private static final Pattern TRAFFIC = Pattern.compile("(rx|tx)_(frames|bytes)");
    private static final Pattern DROPS = Pattern.compile("(rx|tx)_dropped_([a-z0-9_]+)");

    /** What is known about one device besides its snapshot. */
    public record Device(String type, DeviceSnapshot snapshot) {
    }

    /** Families in output order; each collects its samples so they stay grouped as the format requires. */
    private final Map<String, Family> families = new LinkedHashMap<>();

    private record Family(String type, String help, StringBuilder samples) {
    }

    private PrometheusText() {
        family("jvhost_devices", "gauge", "Devices served.");
        family("jvhost_device_connected", "gauge", "1 if a front-end is connected to the device.");
        family("jvhost_device_failed", "gauge", "1 if a device callback threw and the device waits for a reset.");
        family("jvhost_device_sessions_total", "counter", "Front-end connections served.");
        family("jvhost_device_errors_total", "counter",
                "Errors: broken queues, throwing device callbacks (queue or fd watch).");
        family("jvhost_device_frames_total", "counter", "Frames the device moved, by direction (device counters).");
        family("jvhost_device_bytes_total", "counter", "Frame bytes the device moved, by direction (device counters).");
        family("jvhost_device_drops_total", "counter", "Frames the device dropped, by direction and reason.");
        family("jvhost_device_counter_total", "counter", "Other device-specific counters.");
        family("jvhost_queue_active", "gauge", "1 if the device holds the queue (started and enabled).");
        family("jvhost_queue_kicks_total", "counter", "Notifications the device handled on the queue.");
        family("jvhost_queue_calls_total", "counter", "Signals written to the queue's call eventfd.");
        family("jvhost_queue_errors_total", "counter", "Times the queue broke or a device callback for it threw.");
        family("jvhost_queue_frames_total", "counter", "Frames moved on the queue (device counters).");
        family("jvhost_queue_bytes_total", "counter", "Frame bytes moved on the queue (device counters).");
        family("jvhost_queue_drops_total", "counter", "Frames dropped on the queue, by reason.");
        family("jvhost_queue_counter_total", "counter", "Other device-specific queue counters.");
    }

    /** The exposition text for {@code devices}. */
    public static String render(List<Device> devices) {
        PrometheusText t = new PrometheusText();
        t.sample("jvhost_devices", "", devices.size());
        for (Device d : devices) {
            t.device(d);
        }
        StringBuilder out = new StringBuilder();
        t.families.forEach((name, f) -> {
            if (f.samples.length() > 0 || name.equals("jvhost_devices")) {
                out.append("# HELP ").append(name).append(' ').append(f.help).append('\n');
                out.append("# TYPE ").append(name).append(' ').append(f.type).append('\n');
                out.append(f.samples);
            }
        });
        return out.toString();
    }

    private void device(Device d) {
        DeviceSnapshot s = d.snapshot();
        String dev = label("device", s.name());
        sample("jvhost_device_connected", dev + "," + label("type", d.type()), s.connected() ? 1 : 0);
        sample("jvhost_device_failed", dev, s.failed() ? 1 : 0);
        sample("jvhost_device_sessions_total", dev, s.sessions());
        long errors = s.errors();
        for (QueueSnapshot q : s.queues()) {
            errors += q.errors();
        }
        sample("jvhost_device_errors_total", dev, errors);
        counters("jvhost_device_", dev, s.counters());
        for (QueueSnapshot q : s.queues()) {
            String queue = dev + "," + label("queue", Integer.toString(q.index()));
            sample("jvhost_queue_active", queue, q.active() ? 1 : 0);
            sample("jvhost_queue_kicks_total", queue, q.kicks());
            sample("jvhost_queue_calls_total", queue, q.calls());
            sample("jvhost_queue_errors_total", queue, q.errors());
            counters("jvhost_queue_", queue, q.counters());
        }
    }

    private void counters(String prefix, String labels, Map<String, Long> counters) {
        counters.forEach((name, value) -> {
            Matcher m = TRAFFIC.matcher(name);
            if (m.matches()) {
                sample(prefix + m.group(2) + "_total", labels + "," + label("direction", m.group(1)), value);
                return;
            }
            m = DROPS.matcher(name);
            if (m.matches()) {
                sample(prefix + "drops_total", labels + "," + label("direction", m.group(1)) + ","
                        + label("reason", m.group(2)), value);
                return;
            }
            sample(prefix + "counter_total", labels + "," + label("counter", name), value);
        });
    }

    private void family(String name, String type, String help) {
        families.put(name, new Family(type, help, new StringBuilder()));
    }

    private void sample(String family, String labels, long value) {
        StringBuilder b = families.get(family).samples;
        b.append(family);
        if (!labels.isEmpty()) {
            b.append('{').append(labels).append('}');
        }
        b.append(' ').append(value).append('\n');
    }

    /** {@code name="value"} with the format's escapes: backslash, double quote and line feed. */
    private static String label(String name, String value) {
        return name + "=\"" + value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n") + "\"";
    }
}
