package org.jvhost.host.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import org.jvhost.engine.event.Polling;
import org.jvhost.engine.event.WorkerPool;
import org.jvhost.engine.memory.MemoryBudget;
import org.jvhost.host.config.ConfigException;
import org.jvhost.host.config.ConfigFile;
import org.jvhost.host.config.DeviceEntry;
import org.jvhost.host.config.DeviceSpec;
import org.jvhost.host.control.ControlServer;
import org.jvhost.host.devices.DeviceHost;
import org.jvhost.host.devices.DeviceManager;
import org.jvhost.host.devices.PlannedDevice;
import org.jvhost.host.metrics.MetricsServer;
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
 * SIGHUP reloads it; without one, SIGHUP is logged and changes nothing. A start that fails in any way
 * (a plugin's {@link Error} too) ends with a non-zero status.
 */
@Command(name = "serve", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = {"Serve virtio devices over vhost-user until SIGTERM or SIGINT.",
            "Logs go to stderr; one INFO line per device says it is ready."})
final class ServeCommand implements Callable<Integer> {
    private static final Logger LOG = LoggerFactory.getLogger(ServeCommand.class);


    @Spec
    CommandSpec spec;

    @Option(names = "--device", paramLabel = "TYPE:socket=PATH[,key=value...]",
            converter = SpecConverter.class,
            description = {"A device to serve (repeatable). socket=PATH: jvhost listens on PATH and the "
                + "front-end connects (QEMU: -chardev socket,path=PATH,reconnect=1). connect=PATH instead: "
                + "the front-end listens and jvhost connects. One device may leave both out (or be just TYPE) "
                + "and take --socket-path or --fd. socket-mode=0660 and socket-group=NAME set the socket "
                + "file's mode (default 0600) and group; allow-uid=UID[:UID...] accepts only front-ends running "
                + "as those uids. Other keys are the device type's options; see 'jvhost devices'. Not with --config."})
    List<DeviceSpec> devices = List.of();

    @Option(names = "--config", paramLabel = "FILE",
            description = {"Serve the devices of FILE ([device NAME] sections; see the README); SIGHUP or "
                + "'jvhost ctl reload' applies its changes at run time. Not with --device."})
    Path config;

    @Option(names = "--socket-path", paramLabel = "PATH",
            description = "The listening socket of the one --device given without socket=/connect= "
                + "(vhost-user back-end program convention).")
    Path socketPath;

    @Option(names = "--fd", paramLabel = "N",
            description = "An inherited listening Unix socket, as file descriptor N, for the one --device "
                + "given without socket=/connect= (vhost-user back-end program convention). Its socket "
                + "file is left alone.")
    Integer fd;

    @Option(names = "--print-capabilities",
            description = "Print the vhost-user capabilities JSON of the device type (of --device, or of all "
                + "types, which must agree) and exit; other options are ignored, and no device is created.")
    boolean printCapabilities;

    @Option(names = "--allow-uid", split = ",", paramLabel = "UID",
            description = "Accept front-ends running as these uids only (SO_PEERCRED), on every device "
                + "without its own allow-uid. Default: any uid that can open the socket.")
    List<Integer> allowUids;

    @Option(names = "--workers", paramLabel = "N",
            description = "Worker threads serving all queues of all devices (default: [host] workers, else available processors, ${DEFAULT-VALUE}).")
    int workers = Runtime.getRuntime().availableProcessors();

    @Option(names = "--poll-us", paramLabel = "N",
            description = {"After a kick that found work, a worker keeps polling the queue (the driver stops "
                + "kicking) until it has been idle for N microseconds at first; 0 disables polling "
                + "(default: [host] poll-us, else ${DEFAULT-VALUE}). Polling spends CPU while traffic flows "
                + "for throughput and latency."})
    int pollMicros = WorkerPool.DEFAULT_POLL_MICROS;

    @Option(names = "--poll-max-us", paramLabel = "M",
            description = {"The longest the idle time of --poll-us grows to while the worker's sleeps prove "
                + "too short for the traffic (default: [host] poll-max-us, else the larger of --poll-us and "
                + Polling.DEFAULT_MAX_MICROS + "); equal to --poll-us for a fixed time."})
    Integer pollMaxMicros;

    @Option(names = "--max-guest-memory", paramLabel = "SIZE",
            description = {"Guest memory one front-end connection may have mapped, e.g. 4T or 512G (default: "
                + "[host] max-guest-memory, else 4T)."})
    String maxGuestMemory;

    @Option(names = "--max-mapped-memory", paramLabel = "SIZE",
            description = "Guest memory all connections together may have mapped (default: [host] "
                + "max-mapped-memory, else 64T, half the x86-64 address space).")
    String maxMappedMemory;

    @Option(names = "--control", paramLabel = "PATH",
            description = "Serve the control API (jvhost ctl) on this Unix socket, owner-only (default: [host] control, "
                + "else $" + DefaultControl.ENV + ", else /run/jvhost/control.sock if /run/jvhost exists).")
    Path control;

    /** The environment and runtime directory behind the default control socket; tests replace them. */
    Map<String, String> env = System.getenv();
    Path runtimeDir = DefaultControl.PATH.getParent();

    @Option(names = "--metrics", paramLabel = "HOST:PORT",
            description = "Serve GET /metrics (Prometheus text or OpenMetrics) on this loopback address, e.g. 127.0.0.1:9109 (default: [host] metrics, else none).")
    String metrics;

    @Option(names = "--takeover",
            description = {"Hot upgrade: take every device, connection and socket over from the jvhost running "
                + "with the same control socket (start this one with the same arguments plus --takeover; "
                + "'jvhost ctl upgrade' does that). The running one exits 0 once this one serves; if this one "
                + "fails first, the running one goes on serving."})
    boolean takeover;

    @Mixin
    PluginsOption plugins;

    @Mixin
    LogOption logLevel;

    private final DeviceTypeLoader loader;
    private final DeviceHost.Factory hostFactory;
    private final Lifecycle lifecycle;

    ServeCommand(DeviceTypeLoader loader, DeviceHost.Factory hostFactory, Lifecycle lifecycle) {
        this.loader = loader;
        this.hostFactory = hostFactory;
        this.lifecycle = lifecycle;
        this.services = new ServeServices(lifecycle);
    }

    /** What runs besides the host. */
    private final ServeServices services;

    @Override
    public Integer call() throws IOException, InterruptedException {
        if (printCapabilities) {
            return printCapabilities();
        }
        if (allowUids != null && allowUids.stream().anyMatch(u -> u < 0)) {
            throw usage("--allow-uid " + allowUids + ": uids are not negative");
        }
        if ((socketPath != null || fd != null) && config != null) {
            throw usage("--socket-path and --fd serve one --device, not a --config file");
        }
        try {
            devices = SingleSocket.place(devices, socketPath, fd);
        } catch (IllegalArgumentException e) {
            throw usage(e.getMessage());
        }
        if (config != null && !devices.isEmpty()) {
            throw usage("--config and --device cannot be combined: declare every device in " + config);
        }
        ConfigFile.Parsed file = readConfig();
        ConfigFile.Settings settings = file == null ? ConfigFile.Settings.NONE : file.host();
        int threads = given("--workers") || settings.workers() == null ? workers : settings.workers();
        if (threads < 1 || threads > ConfigFile.MAX_WORKERS) {
            throw usage("--workers " + threads + ": must be between 1 and " + ConfigFile.MAX_WORKERS);
        }
        Polling polling = polling(settings);
        Path controlPath = control != null ? control : settings.control();
        boolean controlByDefault = controlPath == null;
        InetSocketAddress metricsAddress = metricsAddress(metrics != null ? metrics : settings.metrics());
        List<DeviceEntry> entries = new ArrayList<>();
        if (file != null) {
            entries.addAll(file.devices());
        } else {
            devices.forEach(d -> entries.add(DeviceEntry.of(d, DeviceEntry.Origin.COMMAND_LINE)));
        }
        if (controlByDefault) {
            controlPath = DefaultControl.forServe(env, runtimeDir);
        }
        if (entries.isEmpty() && file == null && (controlByDefault || controlPath == null)) {
            throw usage("nothing to serve: give --device, --config or --control");
        }
        if (takeover && controlPath == null) {
            throw usage("--takeover finds the running jvhost next to its control socket: give --control");
        }
        DeviceTypes types = plugins.load(loader, spec);
        // Before checking, so that an unusable device type is explained by the plugin problem behind it.
        types.problems().forEach(p -> LOG.error("{}", p));
        PlannedDevice.Plan plan = PlannedDevice.plan(entries, List.of(), types,
                file != null ? file.problems() : List.of());
        MemoryBudget memoryBudget = new MemoryBudget(
                limit("--" + MemoryBudget.HOST_OPTION, maxMappedMemory, settings.maxMappedMemory(),
                        MemoryBudget.DEFAULT_HOST_LIMIT),
                limit("--" + MemoryBudget.CONNECTION_OPTION, maxGuestMemory, settings.maxGuestMemory(),
                        MemoryBudget.DEFAULT_CONNECTION_LIMIT));
        DeviceHost host = hostFactory.create(threads, polling, memoryBudget);
        DeviceManager manager = new DeviceManager(host, types, config, settings,
                allowUids == null ? Set.of() : new LinkedHashSet<>(allowUids), fd);
        lifecycle.closeOnShutdown(() -> {
            LOG.info("stopping");
            services.stop(host);
        });
        boolean started = false;
        HotUpgrade upgrade = null;
        Exception failure = null;
        try {
            upgrade = takeover ? HotUpgrade.takeOver(host, controlPath) : null;
            manager.start(plan);
            ControlServer controlServer = controlPath == null ? null
                    : services.startControl(controlPath, controlByDefault, manager,
                            upgrade == null ? -1 : upgrade.controlFd());
            if (upgrade == null) {
                services.startMetrics(metricsAddress, manager);
                services.offerHandover(host, controlPath, controlServer);
            } else {
                Path control = controlPath;
                upgrade.acknowledge(() -> services.afterTakeover(host, metricsAddress, manager, control, controlServer));
            }
            started = true;
        } catch (ConfigException e) {
            failure = e;
            throw usage(e.getMessage());
        } catch (IOException | RuntimeException e) {
            failure = e;
            throw e;
        } finally {
            if (!started && upgrade != null) {
                upgrade.abandon();
                lifecycle.abandonTakeover(failure == null ? "see the errors above" : failure.getMessage());
            }
            if (!started) {
                // whatever failed: the shutdown hook must not outlive it, since it exits with status 0
                lifecycle.cancel();
                services.stop(host);
            }
        }
        // Always: the JVM's default for SIGHUP is to stop, and the systemd unit's ExecReload sends one.
        lifecycle.reloadOnHangup(config != null ? () -> reloadOnSignal(manager)
                : () -> LOG.info("SIGHUP: nothing to reload (serve was started without --config); still serving"));
        LOG.info("serving {} device(s) with {} worker(s), polling busy queues for {}-{} us; stop with SIGTERM or SIGINT{}",
                entries.size(), threads, polling.micros(), polling.maxMicros(),
                config != null ? ", reload " + config + " with SIGHUP" : "");
        lifecycle.ready("serving " + entries.size() + " device(s)", host::loopsAnswer);
        lifecycle.awaitShutdown();
        services.stop(host);
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

    /** The command line's {@code text}, else the config file's {@code fromFile}, else {@code otherwise}. */
    private long limit(String option, String text, Long fromFile, long otherwise) {
        if (text == null) {
            return fromFile != null ? fromFile : otherwise;
        }
        try {
            return MemoryBudget.parseLimit(text);
        } catch (IllegalArgumentException e) {
            throw usage(option + " " + e.getMessage());
        }
    }

    /**
     * --poll-us and --poll-max-us, each from the command line, else the file's [host], else the default;
     * a maximum left out is the larger of the start and {@link Polling#DEFAULT_MAX_MICROS}.
     */
    private Polling polling(ConfigFile.Settings settings) {
        int start = given("--poll-us") || settings.pollMicros() == null ? pollMicros : settings.pollMicros();
        if (start < 0 || start > ConfigFile.MAX_POLL_MICROS) {
            throw usage("--poll-us " + start + ": must be between 0 and " + ConfigFile.MAX_POLL_MICROS);
        }
        Integer max = given("--poll-max-us") || settings.pollMaxMicros() == null ? pollMaxMicros : settings.pollMaxMicros();
        if (max == null) {
            return Polling.startingAt(start);
        }
        if (max < 0 || max > ConfigFile.MAX_POLL_MICROS) {
            throw usage("--poll-max-us " + max + ": must be between 0 and " + ConfigFile.MAX_POLL_MICROS);
        }
        if (start > 0 && max < start) {
            throw usage("--poll-max-us " + max + ": must not be below --poll-us " + start);
        }
        return new Polling(start, max);
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

    /** SIGHUP: reloads the config file; the outcome and its warnings are logged, as ctl reload returns them. */
    static void reloadOnSignal(DeviceManager manager) {
        LOG.info("SIGHUP: reloading the config file");
        try {
            manager.reload();
        } catch (ConfigException e) {
            LOG.error("reload refused, nothing was changed:\n  {}", String.join("\n  ", e.problems()));
        } catch (RuntimeException e) {
            LOG.error("reload failed", e);
        }
    }

    /** {@code --print-capabilities} ({@link Capabilities#of}): the JSON on stdout, exit status 0. */
    private int printCapabilities() {
        String json;
        try {
            json = Capabilities.of(plugins.load(loader, spec), devices);
        } catch (IllegalArgumentException e) {
            throw usage("--print-capabilities: " + e.getMessage());
        }
        PrintWriter out = spec.commandLine().getOut();
        out.println(json);
        out.flush();
        return 0;
    }

    private ParameterException usage(String message) {
        return new ParameterException(spec.commandLine(), message);
    }

    /** {@code --device} text to a {@link DeviceSpec}; grammar errors become usage errors. */
    static final class SpecConverter implements ITypeConverter<DeviceSpec> {
        @Override
        public DeviceSpec convert(String value) {
            try {
                return DeviceSpec.parse(value, true);
            } catch (IllegalArgumentException e) {
                throw new TypeConversionException(e.getMessage());
            }
        }
    }
}
