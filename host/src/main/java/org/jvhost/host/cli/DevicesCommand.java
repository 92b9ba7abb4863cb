package org.jvhost.host.cli;

import java.io.PrintWriter;
import java.util.concurrent.Callable;
import org.jvhost.host.plugin.DeviceTypeLoader;
import org.jvhost.host.plugin.DeviceTypes;
import org.jvhost.spi.OptionSpec;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * {@code jvhost devices}: the device types this host can serve, each with its origin (built-in or the
 * plugin's file), version, description and options, then one {@code error:} line per plugin problem.
 */
@Command(name = "devices", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = {"List the device types (built-in and from the plugins directory) with their origin, "
            + "version and options; report plugins that could not be loaded."})
final class DevicesCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Mixin
    PluginsOption plugins;

    @Mixin
    LogOption logLevel;

    private final DeviceTypeLoader loader;

    DevicesCommand(DeviceTypeLoader loader) {
        this.loader = loader;
    }

    @Override
    public Integer call() {
        DeviceTypes types = plugins.load(loader, spec);
        PrintWriter out = spec.commandLine().getOut();
        out.println("Every device takes socket=PATH (jvhost listens) or connect=PATH (jvhost connects).");
        out.println("Plugins directory: " + plugins.describe(loader));
        for (DeviceTypes.DeviceType type : types.types()) {
            out.println();
            out.printf("%s - %s%n", type.name(), type.description());
            out.printf("    origin   %s%n", type.origin());
            out.printf("    version  %s%n", type.version());
            for (OptionSpec option : type.options()) {
                String dflt = option.required() ? "(required)"
                        : option.defaultValue() == null ? "(unset)" : option.defaultValue();
                out.printf("    %-12s default %-18s %s%n", option.name(), dflt, option.description());
            }
        }
        if (types.types().isEmpty()) {
            out.println("No device types found.");
        }
        out.flush();
        PrintWriter err = spec.commandLine().getErr();
        types.problems().forEach(p -> err.println("error: " + p));
        err.flush();
        return 0;
    }
}
