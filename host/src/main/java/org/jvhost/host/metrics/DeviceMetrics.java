package org.jvhost.host.metrics;

import io.prometheus.metrics.model.registry.MultiCollector;
import io.prometheus.metrics.model.snapshots.CounterSnapshot;
import io.prometheus.metrics.model.snapshots.CounterSnapshot.CounterDataPointSnapshot;
import io.prometheus.metrics.model.snapshots.GaugeSnapshot;
import io.prometheus.metrics.model.snapshots.GaugeSnapshot.GaugeDataPointSnapshot;
import io.prometheus.metrics.model.snapshots.InfoSnapshot;
import io.prometheus.metrics.model.snapshots.InfoSnapshot.InfoDataPointSnapshot;
import io.prometheus.metrics.model.snapshots.Labels;
import io.prometheus.metrics.model.snapshots.MetricSnapshot;
import io.prometheus.metrics.model.snapshots.MetricSnapshots;
import io.prometheus.metrics.model.snapshots.PrometheusNaming;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.jvhost.engine.server.DeviceSnapshot;
import org.jvhost.engine.server.DeviceSnapshot.QueueSnapshot;

/**
 * The devices' state and counters as Prometheus families, collected at scrape time from one
 * {@link DeviceSnapshot} per device (read without locks; the data path does not know about metrics).
 *
 * <p>Device counters named {@code rx_frames}/{@code tx_frames}, {@code rx_bytes}/{@code tx_bytes} and
 * {@code rx_dropped_REASON}/{@code tx_dropped_REASON} (or {@code rx_dropped}, reason {@code unspecified})
 * become {@code jvhost_device_frames_total},
 * {@code _bytes_total} and {@code _drops_total} (and {@code jvhost_queue_*} for queue counters) with
 * {@code direction} (and {@code reason}) labels. Any other counter of a device type gets a family of its
 * own, {@code jvhost_TYPE_NAME_total} ({@code jvhost_TYPE_queue_NAME_total} per queue): the SPI's
 * counters are counters, and the type prefix keeps a plugin's names from colliding with the host's.
 *
 * <p>Errors are counted once: {@code jvhost_device_errors_total} counts the errors outside any queue,
 * {@code jvhost_queue_errors_total} those of each queue, so a sum over both series is the total.
 */
public final class DeviceMetrics implements MultiCollector {
    private static final Pattern TRAFFIC = Pattern.compile("(rx|tx)_(frames|bytes)");
    /** {@code rx_dropped_REASON}, or {@code rx_dropped} alone (reason {@code unspecified}). */
    private static final Pattern DROPS = Pattern.compile("(rx|tx)_dropped(?:_([a-z0-9_]+))?");

    /** What is known about one device besides its snapshot. */
    public record Device(String type, DeviceSnapshot snapshot) {
    }

    private final Supplier<List<Device>> devices;

    /** Collects {@code devices} (called once per scrape). */
    public DeviceMetrics(Supplier<List<Device>> devices) {
        this.devices = devices;
    }

    @Override
    public MetricSnapshots collect() {
        Families f = new Families();
        List<Device> all = devices.get();
        f.gauge("jvhost_devices", "Devices served.", Labels.EMPTY, all.size());
        for (Device d : all) {
            device(f, d);
        }
        return f.snapshots();
    }

    private static void device(Families f, Device d) {
        DeviceSnapshot s = d.snapshot();
        Labels dev = Labels.of("device", s.name());
        f.info("jvhost_device", "The device's type.", Labels.of("device", s.name(), "type", d.type()));
        f.gauge("jvhost_device_connected", "1 if a front-end is connected to the device.", dev, s.connected() ? 1 : 0);
        f.gauge("jvhost_device_failed", "1 if a device callback threw and the device waits for a reset.", dev,
                s.failed() ? 1 : 0);
        f.counter("jvhost_device_sessions", "Front-end connections served.", dev, s.sessions());
        f.counter("jvhost_device_errors", "Errors outside any queue: a device fd watch threw "
                + "(queue errors are in jvhost_queue_errors_total).", dev, s.errors());
        counters(f, "jvhost_device_", typePrefix(d.type()), dev, s.counters());
        for (QueueSnapshot q : s.queues()) {
            Labels queue = Labels.of("device", s.name(), "queue", Integer.toString(q.index()));
            f.gauge("jvhost_queue_active", "1 if the device holds the queue (started and enabled).", queue,
                    q.active() ? 1 : 0);
            f.counter("jvhost_queue_kicks", "Notifications the device handled on the queue.", queue, q.kicks());
            f.counter("jvhost_queue_calls", "Signals written to the queue's call eventfd.", queue, q.calls());
            f.counter("jvhost_queue_errors", "Times the queue broke or a device callback for it threw.", queue,
                    q.errors());
            counters(f, "jvhost_queue_", typePrefix(d.type()) + "queue_", queue, q.counters());
        }
    }

    /** A device type's counters: traffic and drops in the shared families, the rest in families of their own. */
    private static void counters(Families f, String shared, String own, Labels labels, Map<String, Long> counters) {
        counters.forEach((name, value) -> {
            Matcher m = TRAFFIC.matcher(name);
            if (m.matches()) {
                f.counter(shared + m.group(2), m.group(2).equals("frames") ? "Frames moved, by direction."
                        : "Frame bytes moved, by direction.", labels.add("direction", m.group(1)), value);
                return;
            }
            m = DROPS.matcher(name);
            if (m.matches()) {
                f.counter(shared + "drops", "Frames dropped, by direction and reason.",
                        labels.add("direction", m.group(1)).add("reason", m.group(2) != null ? m.group(2) : "unspecified"),
                        value);
                return;
            }
            String bare = name.endsWith("_total") ? name.substring(0, name.length() - "_total".length()) : name;
            f.counter(PrometheusNaming.sanitizeMetricName(own + bare), "Device type counter " + name + ".", labels,
                    value);
        });
    }

    private static String typePrefix(String type) {
        return "jvhost_" + type.replaceAll("[^A-Za-z0-9_]", "_") + "_";
    }

    /** Data points grouped by family, families in the order first seen. */
    private static final class Families {
        private final Map<String, Supplier<MetricSnapshot>> ordered = new LinkedHashMap<>();
        private final Map<String, GaugeSnapshot.Builder> gauges = new HashMap<>();
        private final Map<String, CounterSnapshot.Builder> counters = new HashMap<>();
        private final Map<String, InfoSnapshot.Builder> infos = new HashMap<>();

        void gauge(String name, String help, Labels labels, double value) {
            gauges.computeIfAbsent(name, n -> add(n, GaugeSnapshot.builder().name(n).help(help)))
                    .dataPoint(GaugeDataPointSnapshot.builder().labels(labels).value(value).build());
        }

        void counter(String name, String help, Labels labels, double value) {
            counters.computeIfAbsent(name, n -> add(n, CounterSnapshot.builder().name(n).help(help)))
                    .dataPoint(CounterDataPointSnapshot.builder().labels(labels).value(value).build());
        }

        void info(String name, String help, Labels labels) {
            infos.computeIfAbsent(name, n -> add(n, InfoSnapshot.builder().name(n).help(help)))
                    .dataPoint(InfoDataPointSnapshot.builder().labels(labels).build());
        }

        private <B extends MetricSnapshot.Builder<B>> B add(String name, B builder) {
            ordered.put(name, builder::build);
            return builder;
        }

        MetricSnapshots snapshots() {
            List<MetricSnapshot> out = new ArrayList<>(ordered.size());
            ordered.values().forEach(b -> out.add(b.get()));
            return new MetricSnapshots(out);
        }
    }
}
