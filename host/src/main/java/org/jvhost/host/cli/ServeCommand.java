package org.jvhost.host.cli;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.jvhost.host.control.ControlServer;
import org.jvhost.host.metrics.MetricsServer;
import org.jvhost.host.metrics.PrometheusText;
import org.jvhost.host.plugin.DeviceTypeLoader;
import org.jvhost.host.plugin.DeviceTypes;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import picocli.CommandLine.TypeConversionException;

/**
 * {@code jvhost serve}: checks every device (from {@code --device} or {@code --config}) against its
 * type, and creates them all, before anything starts (so a typo costs no socket); then serves them,
 * with the optional control socket and metrics endpoint, until SIGTERM or SIGINT. With a config file,
 * SIGHUP reloads it.
 */
@Command(name = "serve", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = {"Serve virtio devices over vhost-user until SIGTERM or SIGINT.",
            "Logs go to stderr; one INFO line per device says it is ready."})
final class ServeCommand implements Callable<Integer> {
    private static final Logger LOG = LoggerFactory.getLogger(ServeCommand.class);

    /** Far beyond any useful count: workers only copy and signal, and a machine has few CPUs. */
    static final int MAX_WORKERS = 1024;

    @Spec
    CommandSpec spec;

    @Option(names = "--device", paramLabel = "TYPE:socket=PATH[,key=value...]",
            converter = SpecConverter.class,
            description = {"A device to serve (repeatable). socket=PATH: jvhost listens on PATH and the "
                + "front-end connects (QEMU: -chardev socket,path=PATH,reconnect=1). connect=PATH instead: "
                + "the front-end listens and jvhost connects. Other keys are the device type's options; "
                + "see 'jvhost devices'. Not with --config."})
    List<DeviceSpec> devices = List.of();

    @Option(names = "--config", paramLabel = "FILE",
            description = {"Serve the devices of FILE ([device NAME] sections; see the README); SIGHUP or "
                + "'jvhost ctl reload' applies its changes at run time. Not with --device."})
    Path config;

    @Option(names = "--workers", paramLabel = "N",
            description = "Worker threads serving all queues of all devices (default: [host] workers, else available processors, ${DEFAULT-VALUE}).")
    int workers = Runtime.getRuntime().availableProcessors();

    @Option(names = "--control", paramLabel = "PATH",
            description = "Serve the control API (jvhost ctl) on this Unix socket, owner-only (default: [host] control, else none).")
    Path control;

    @Option(names = "--metrics", paramLabel = "HOST:PORT",
            description = "Serve GET /metrics (Prometheus text format) on this loopback address, e.g. 127.0.0.1:9109 (default: [host] metrics, else none).")
    String metrics;

    @Mixin
    PluginsOption plugins;

    private final DeviceTypeLoader loader;
    private final DeviceHost.Factory hostFactory;
    private final Lifecycle lifecycle;

    ServeCommand(DeviceTypeLoader loader, DeviceHost.Factory hostFactory, Lifecycle lifecycle) {
        this.loader = loader;
        this.hostFactory = hostFactory;
        this.lifecycle = lifecycle;
    }

    /** What runs besides the host; closed in reverse order of start. */
    private final List<AutoCloseable> services = new ArrayList<>();

    @Override
    public Integer call() throws IOException, InterruptedException {
        if (config != null && !devices.isEmpty()) {
            throw usage("--config and --device cannot be combined: declare every device in " + config);
        }
        ConfigFile.Parsed file = readConfig();
        ConfigFile.Settings settings = file == null ? ConfigFile.Settings.NONE : file.host();
        int threads = given("--workers") || settings.workers() == null ? workers : settings.workers();
        if (threads < 1 || threads > MAX_WORKERS) {
            throw usage("--workers " + threads + ": must be between 1 and " + MAX_WORKERS);
        }
        Path controlPath = control != null ? control : settings.control();
        InetSocketAddress metricsAddress = metricsAddress(metrics != null ? metrics : settings.metrics());
        List<DeviceEntry> entries = new ArrayList<>();
        if (file != null) {
            entries.addAll(file.devices());
        } else {
            devices.forEach(d -> entries.add(DeviceEntry.of(d, DeviceEntry.Origin.COMMAND_LINE)));
        }
        if (entries.isEmpty() && file == null && controlPath == null) {
            throw usage("nothing to serve: give --device, --config or --control");
        }
        DeviceTypes types = plugins.load(loader, spec);
        // Before checking, so that an unusable device type is explained by the plugin problem behind it.
        types.problems().forEach(p -> LOG.error("{}", p));
        List<DeviceManager.Planned> plan;
        try {
            plan = DeviceManager.check(entries, List.of(), types);
        } catch (ConfigException e) {
            throw usage(e.getMessage());
        }
        DeviceHost host = hostFactory.create(threads);
        DeviceManager manager = new DeviceManager(host, types, config, settings);
        lifecycle.closeOnShutdown(() -> {
            LOG.info("stopping");
            stop(host);
        });
        try {
            manager.start(plan);
            if (controlPath != null) {
                services.add(ControlServer.start(controlPath, new ControlRequests(manager)));
            }
            if (metricsAddress != null) {
                services.add(MetricsServer.start(metricsAddress, () -> metricsText(manager)));
            }
        } catch (ConfigException e) {
            lifecycle.cancel();
            stop(host);
            throw usage(e.getMessage());
        } catch (IOException | RuntimeException e) {
            lifecycle.cancel();
            stop(host);
            throw e;
        }
        if (config != null) {
            lifecycle.reloadOnHangup(() -> reloadOnSignal(manager));
        }
        LOG.info("serving {} device(s) with {} worker(s); stop with SIGTERM or SIGINT{}", entries.size(), threads,
                config != null ? ", reload " + config + " with SIGHUP" : "");
        lifecycle.awaitShutdown();
        stop(host);
        return 0;
    }

    private ConfigFile.Parsed readConfig() {
        if (config == null) {
            return null;
        }
        try {
            return ConfigFile.read(config);
        } catch (ConfigException e) {
            throw usage(e.getMessage());
        }
    }

    private boolean given(String option) {
        return spec.commandLine().getParseResult() != null && spec.commandLine().getParseResult().hasMatchedOption(option);
    }

    private InetSocketAddress metricsAddress(String listen) {
        if (listen == null) {
            return null;
        }
        try {
            return MetricsServer.loopbackAddress(listen);
        } catch (IllegalArgumentException e) {
            throw usage("--metrics: " + e.getMessage());
        }
    }

    /** The metrics endpoint's body: every running device's snapshot. */
    static String metricsText(DeviceManager manager) {
        List<PrometheusText.Device> devices = new ArrayList<>();
        manager.list().forEach(v -> devices.add(new PrometheusText.Device(v.entry().spec().type(), v.snapshot())));
        return PrometheusText.render(devices);
    }

    private static void reloadOnSignal(DeviceManager manager) {
        LOG.info("SIGHUP: reloading the config file");
        try {
            manager.reload();
        } catch (ConfigException e) {
            LOG.error("reload refused, nothing was changed:\n  {}", String.join("\n  ", e.problems()));
        } catch (RuntimeException e) {
            LOG.error("reload failed", e);
        }
    }

    /** Closes the control socket and metrics endpoint, then the host (every device). Idempotent. */
    private synchronized void stop(DeviceHost host) {
        for (int i = services.size() - 1; i >= 0; i--) {
            try {
                services.get(i).close();
            } catch (Exception e) {
                LOG.warn("closing {}: {}", services.get(i), e.toString());
            }
        }
        services.clear();
        host.close();
    }

    private ParameterException usage(String message) {
        return new ParameterException(spec.commandLine(), message);
    }

    /** {@code --device} text to a {@link DeviceSpec}; grammar errors become usage errors. */
    static final class SpecConverter implements ITypeConverter<DeviceSpec> {
        @Override
        public DeviceSpec convert(String value) {
            try {
                return DeviceSpec.parse(value);
            } catch (IllegalArgumentException e) {
                throw new TypeConversionException(e.getMessage());
            }
        }
    }
}
