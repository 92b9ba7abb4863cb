package org.jvhost.host.cli;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.jvhost.engine.server.Host;
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

    @Option(names = "--device", required = true, paramLabel = "TYPE:socket=PATH[,key=value...]",
            converter = SpecConverter.class,
            description = {"A device to serve (repeatable). socket=PATH: jvhost listens on PATH and the "
                + "front-end connects (QEMU: -chardev socket,path=PATH,reconnect=1). connect=PATH instead: "
                + "the front-end listens and jvhost connects. Other keys are the device type's options; "
                + "see 'jvhost devices'."})
    List<DeviceSpec> devices;

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

    /** A checked device waiting to be created. */
    private record Planned(DeviceSpec spec, DeviceProvider provider, DeviceOptions options) {
    }

    @Override
    public Integer call() throws IOException, InterruptedException {
        if (workers < 1 || workers > MAX_WORKERS) {
            throw usage("--workers " + workers + ": must be between 1 and " + MAX_WORKERS);
        }
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

    /** Resolves every device's type and options, and rejects two devices on one socket path. */
    private List<Planned> plan(DeviceTypes types) {
        List<Planned> plan = new ArrayList<>();
        Map<Path, DeviceSpec> bySocket = new HashMap<>();
        for (DeviceSpec device : devices) {
            DeviceSpec other = bySocket.putIfAbsent(device.socket().toAbsolutePath().normalize(), device);
            if (other != null) {
                throw usage("'" + device.text() + "': socket " + device.socket() + " is already used by '"
                        + other.text() + "'");
            }
            try {
                DeviceProvider provider = types.resolve(device.type());
                plan.add(new Planned(device, provider, device.resolveOptions(provider)));
            } catch (IllegalArgumentException e) {
                throw usage(e.getMessage());
            }
        }
        return plan;
    }

    private void start(DeviceHost host, Planned planned) throws IOException {
        DeviceSpec device = planned.spec();
        DeviceContext context = host.newContext(device.deviceName());
        VhostUserDevice created;
        try {
            created = planned.provider().create(planned.options(), context);
        } catch (InvalidOptionException e) {
            throw usage("'" + device.text() + "': device " + device.deviceName() + ": " + e.getMessage());
        }
        host.addDevice(context, created, device.socket(), device.mode());
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
                return DeviceSpec.parse(value);
            } catch (IllegalArgumentException e) {
                throw new TypeConversionException(e.getMessage());
            }
        }
    }
}
