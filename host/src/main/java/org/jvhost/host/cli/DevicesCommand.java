package org.jvhost.host.cli;

import java.io.PrintWriter;
import java.util.concurrent.Callable;
import org.jvhost.host.plugin.DeviceTypes;
import org.jvhost.spi.DeviceProvider;
import org.jvhost.spi.OptionSpec;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** {@code jvhost devices}: the device types this host can serve, with their options and defaults. */
@Command(name = "devices", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "List the device types found on the class path, with their options.")
final class DevicesCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    private final DeviceTypes types;

    DevicesCommand(DeviceTypes types) {
        this.types = types;
    }

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        out.println("Every device takes socket=PATH (jvhost listens) or connect=PATH (jvhost connects).");
        for (DeviceProvider provider : types.all()) {
            out.println();
            out.printf("%s - %s%n", provider.type(), provider.description());
            for (OptionSpec option : provider.options()) {
                String dflt = option.defaultValue() == null ? "(unset)" : option.defaultValue();
                out.printf("    %-12s default %-18s %s%n", option.name(), dflt, option.description());
            }
        }
        if (types.all().isEmpty()) {
            out.println("No device types found.");
        }
        out.flush();
        PrintWriter err = spec.commandLine().getErr();
        types.problems().forEach(p -> err.println("warning: " + p));
        err.flush();
        return 0;
    }
}
