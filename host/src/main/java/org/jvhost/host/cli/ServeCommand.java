package org.jvhost.host.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import org.jvhost.engine.server.Host;
import org.jvhost.engine.server.SocketAccess;
import org.jvhost.host.plugin.DeviceTypeLoader;
import org.jvhost.host.plugin.DeviceTypes;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.DeviceProvider;
import org.jvhost.spi.InvalidOptionException;
import org.jvhost.spi.VhostUserDevice;
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
 * {@code jvhost serve}: checks every {@code --device} against its type before anything starts (so a
 * typo costs no socket), then creates the host and the devices and serves until SIGTERM or SIGINT.
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
            description = {"A device to serve (repeatable, at least one). socket=PATH: jvhost listens on PATH "
                + "and the front-end connects (QEMU: -chardev socket,path=PATH,reconnect=1). connect=PATH "
                + "instead: the front-end listens and jvhost connects. One device may leave both out (or be "
                + "just TYPE) and take --socket-path or --fd. socket-mode=0660 and socket-group=NAME set the "
                + "socket file's mode (default 0600) and group; allow-uid=UID[:UID...] accepts only front-ends "
                + "running as those uids. Other keys are the device type's options; see 'jvhost devices'."})
    List<DeviceSpec> devices;

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
            description = "Print the vhost-user capabilities JSON of the device type (of --device, or the "
                + "only type there is) and exit; other options are ignored.")
    boolean printCapabilities;

    @Option(names = "--allow-uid", split = ",", paramLabel = "UID",
            description = "Accept front-ends running as these uids only (SO_PEERCRED), on every device "
                + "without its own allow-uid. Default: any uid that can open the socket.")
    List<Integer> allowUids;

    @Option(names = "--workers", paramLabel = "N",
            description = "Worker threads serving all queues of all devices (default: available processors, ${DEFAULT-VALUE}).")
    int workers = Runtime.getRuntime().availableProcessors();

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

    /** A checked device waiting to be created; {@code fd} is an inherited listening socket or null. */
    private record Planned(DeviceSpec spec, DeviceProvider provider, DeviceOptions options, SocketAccess access,
            Integer fd) {
    }

    @Override
    public Integer call() throws IOException, InterruptedException {
        if (printCapabilities) {
            return printCapabilities();
        }
        if (devices == null || devices.isEmpty()) {
            throw usage("Missing required option: '--device=" + DeviceSpec.GRAMMAR + "'");
        }
        if (workers < 1 || workers > MAX_WORKERS) {
            throw usage("--workers " + workers + ": must be between 1 and " + MAX_WORKERS);
        }
        if (allowUids != null && allowUids.stream().anyMatch(u -> u < 0)) {
            throw usage("--allow-uid " + allowUids + ": uids are not negative");
        }
        devices = placeSingleSocket(devices);
        DeviceTypes types = plugins.load(loader, spec);
        // Before planning, so that an unusable --device type is explained by the plugin problem behind it.
        types.problems().forEach(p -> LOG.error("{}", p));
        List<Planned> plan = plan(types);
        DeviceHost host = hostFactory.create(workers);
        lifecycle.closeOnShutdown(() -> {
            LOG.info("stopping");
            host.close();
        });
        try {
            for (Planned device : plan) {
                start(host, device);
            }
        } catch (IOException | RuntimeException e) {
            lifecycle.cancel();
            host.close();
            throw e;
        }
        LOG.info("serving {} device(s) with {} worker(s); stop with SIGTERM or SIGINT", plan.size(), workers);
        lifecycle.awaitShutdown();
        host.close();
        return 0;
    }

    /**
     * Gives the one device without socket=/connect= the socket of {@code --socket-path} (or leaves it
     * to {@code --fd}); every other device must name its own.
     */
    private List<DeviceSpec> placeSingleSocket(List<DeviceSpec> given) {
        if (socketPath != null && fd != null) {
            throw usage("--socket-path and --fd exclude each other: give the socket's path or an inherited fd");
        }
        if (fd != null && fd < 0) {
            throw usage("--fd " + fd + ": not a file descriptor");
        }
        String source = socketPath != null ? "--socket-path" : fd != null ? "--fd" : null;
        List<DeviceSpec> placed = new ArrayList<>();
        DeviceSpec taker = null;
        for (DeviceSpec d : given) {
            if (d.socket() != null) {
                placed.add(d);
                continue;
            }
            if (source == null) {
                throw usage("'" + d.text() + "': expected " + DeviceSpec.GRAMMAR + ": missing socket=PATH "
                        + "(or connect=PATH), or give --socket-path PATH or --fd N for a single device");
            }
            if (taker != null) {
                throw usage("'" + d.text() + "' and '" + taker.text() + "' both lack socket=PATH; " + source
                        + " serves a single device");
            }
            taker = d;
            try {
                placed.add(socketPath != null ? d.withSocket(socketPath) : d);
            } catch (IllegalArgumentException e) {
                throw usage("--socket-path " + e.getMessage());
            }
        }
        if (source != null && taker == null) {
            throw usage(source + ": every --device names its own socket; leave socket=PATH out of the one "
                    + source + " is for");
        }
        if (fd != null) {
            DeviceSpec d = taker;
            for (String key : new String[] {DeviceSpec.KEY_SOCKET_MODE, DeviceSpec.KEY_SOCKET_GROUP}) {
                if (d.options().containsKey(key)) {
                    throw usage("'" + d.text() + "': " + key + " does not apply to an inherited socket (--fd): "
                            + "its creator sets its file's mode and group");
                }
            }
        }
        return placed;
    }

    /** Resolves every device's type and options, and rejects two devices on one socket path. */
    private List<Planned> plan(DeviceTypes types) {
        List<Planned> plan = new ArrayList<>();
        Map<Path, DeviceSpec> bySocket = new HashMap<>();
        Set<Integer> defaultUids = allowUids == null ? Set.of() : new LinkedHashSet<>(allowUids);
        for (DeviceSpec device : devices) {
            if (device.socket() != null) {
                DeviceSpec other = bySocket.putIfAbsent(device.socket().toAbsolutePath().normalize(), device);
                if (other != null) {
                    throw usage("'" + device.text() + "': socket " + device.socket() + " is already used by '"
                            + other.text() + "'");
                }
            }
            try {
                DeviceProvider provider = types.resolve(device.type());
                plan.add(new Planned(device, provider, device.resolveOptions(provider),
                        device.socketAccess(defaultUids), device.socket() == null ? fd : null));
            } catch (IllegalArgumentException e) {
                throw usage(e.getMessage());
            }
        }
        return plan;
    }

    /**
     * {@code --print-capabilities}: the JSON for the type of the first --device, or of the only type
     * available. Per the spec other options are ignored, but a type that cannot be created fails here
     * (early, non-zero) rather than later under a management tool.
     */
    private int printCapabilities() {
        DeviceTypes types = plugins.load(loader, spec);
        String type;
        if (devices != null && !devices.isEmpty()) {
            type = devices.get(0).type();
        } else if (types.types().size() == 1) {
            type = types.types().iterator().next().provider().type();
        } else {
            throw usage("--print-capabilities: give --device TYPE to say which of the "
                    + types.types().size() + " device types");
        }
        DeviceProvider provider;
        DeviceOptions options;
        try {
            provider = types.resolve(type);
            options = devices != null && !devices.isEmpty() ? devices.get(0).resolveOptions(provider)
                    : DeviceSpec.parse(type, true).resolveOptions(provider);
        } catch (IllegalArgumentException e) {
            throw usage(e.getMessage());
        }
        VhostUserDevice device;
        try {
            device = provider.create(options, () -> type + "@capabilities");
        } catch (InvalidOptionException e) {
            throw usage("--print-capabilities: device type " + type + ": " + e.getMessage());
        }
        String json;
        try {
            json = Capabilities.json(device.deviceType());
        } catch (IllegalArgumentException e) {
            throw usage("--print-capabilities: device type " + type + ": " + e.getMessage());
        }
        PrintWriter out = spec.commandLine().getOut();
        out.println(json);
        out.flush();
        return 0;
    }

    private void start(DeviceHost host, Planned planned) throws IOException {
        DeviceSpec device = planned.spec();
        String name = planned.fd() != null ? device.type() + "@fd" + planned.fd() : device.deviceName();
        DeviceContext context = host.newContext(name);
        VhostUserDevice created;
        try {
            created = planned.provider().create(planned.options(), context);
        } catch (InvalidOptionException e) {
            throw usage("'" + device.text() + "': device " + device.deviceName() + ": " + e.getMessage());
        }
        if (planned.fd() != null) {
            host.addDevice(context, created, planned.fd(), planned.access());
            LOG.info("{} ready: listening on inherited fd {}{}", name, planned.fd(),
                    describe(planned.options()));
            return;
        }
        host.addDevice(context, created, device.socket(), device.mode(), planned.access());
        LOG.info("{} ready: {} {}{}", device.deviceName(),
                device.mode() == Host.Mode.LISTEN ? "listening on" : "connecting to", device.socket(),
                describe(planned.options()));
    }

    /** {@code " (k=v, ...)"}, or nothing for a device without options. */
    private static String describe(DeviceOptions options) {
        StringBuilder s = new StringBuilder();
        options.asMap().forEach((k, v) -> s.append(s.length() == 0 ? " (" : ", ").append(k).append('=').append(v));
        return s.length() == 0 ? "" : s.append(')').toString();
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
