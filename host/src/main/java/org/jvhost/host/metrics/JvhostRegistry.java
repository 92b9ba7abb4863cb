package org.jvhost.host.metrics;

import io.prometheus.metrics.core.metrics.Info;
import io.prometheus.metrics.instrumentation.jvm.JvmMetrics;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.util.List;
import java.util.function.Supplier;
import org.jvhost.spi.SpiVersion;

/**
 * Everything the metrics endpoint serves, in one registry: the devices ({@link DeviceMetrics}),
 * {@code jvhost_build_info}, and the Prometheus client's process and JVM metrics (resident memory,
 * open fds, threads, GC, heap: {@code process_*} and {@code jvm_*}). All of it is read at scrape time.
 */
public final class JvhostRegistry {
    private JvhostRegistry() {
    }

    /** A new registry reading {@code devices} at each scrape; {@code commit} is the build's git commit. */
    public static PrometheusRegistry create(Supplier<List<DeviceMetrics.Device>> devices, String commit) {
        PrometheusRegistry registry = new PrometheusRegistry();
        registry.register(new DeviceMetrics(devices));
        Info build = Info.builder().name("jvhost_build_info")
                .help("jvhost's version and git commit, the device SPI version and the Java runtime version.")
                .labelNames("version", "commit", "spi_version", "java_version")
                .register(registry);
        build.setLabelValues(version(), commit, SpiVersion.string(), Runtime.version().toString());
        JvmMetrics.builder().register(registry);
        return registry;
    }

    /** The jar's Implementation-Version, or {@code dev} when run from classes. */
    private static String version() {
        String v = JvhostRegistry.class.getPackage().getImplementationVersion();
        return v != null ? v : "dev";
    }
}
