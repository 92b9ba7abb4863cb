package org.jvhost.host.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import org.jvhost.host.plugin.DeviceTypeLoader;
import org.jvhost.host.plugin.DeviceTypes;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

/** {@code --plugins DIR}, shared by {@code serve} and {@code devices}. */
final class PluginsOption {

    @Option(names = "--plugins", paramLabel = "DIR",
            description = {"Directory of device plugins: each *.jar in it, and each sub-directory of jars, is one "
                + "plugin with its own class loader. Default: the '" + DeviceTypeLoader.DEFAULT_DIR_NAME
                + "' directory next to jvhost.jar, if there is one."})
    Path dir;

    /**
     * The built-in types and those of the plugins directory.
     *
     * @throws ParameterException (exit code 2) if a directory was given and does not exist
     */
    DeviceTypes load(DeviceTypeLoader loader, CommandSpec spec) {
        if (dir != null && !Files.isDirectory(dir)) {
            throw new ParameterException(spec.commandLine(), "--plugins " + dir + ": no such directory");
        }
        return loader.load(dir);
    }

    /** The directory read, for messages: the given one, the default, or none. */
    String describe(DeviceTypeLoader loader) {
        if (dir != null) {
            return dir.toString();
        }
        Path dflt = loader.defaultDir();
        if (dflt == null) {
            return "none";
        }
        return Files.isDirectory(dflt) ? dflt.toString() : dflt + " (absent)";
    }
}
