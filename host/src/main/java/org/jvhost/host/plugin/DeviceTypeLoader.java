package org.jvhost.host.plugin;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.jvhost.host.IoErrors;

/**
 * Where {@code serve} and {@code devices} get their device types: the host's class path, the plugins
 * built into jvhost.jar, and a plugins directory, all judged together (a type in {@code plugins/} that a
 * built-in already has is a collision naming both).
 */
public final class DeviceTypeLoader {

    /** The default plugins directory's name, next to jvhost.jar. */
    public static final String DEFAULT_DIR_NAME = "plugins";

    private final ClassLoader host;
    private final BuiltInPlugins builtIns;
    private final Path defaultDir;

    /**
     * @param host       the host's class loader: its class-path providers are built-ins, and plugins
     *                   get their SPI and slf4j classes from it
     * @param builtIns   the plugins embedded in jvhost.jar
     * @param defaultDir the plugins directory when none is given, or null for none; it may be missing
     */
    public DeviceTypeLoader(ClassLoader host, BuiltInPlugins builtIns, Path defaultDir) {
        this.host = host;
        this.builtIns = builtIns;
        this.defaultDir = defaultDir;
    }

    /** The {@value #DEFAULT_DIR_NAME} directory next to {@code hostJar}, if the host runs from a jar. */
    public static Optional<Path> defaultDirFor(Path hostLocation) {
        if (hostLocation == null || !Files.isRegularFile(hostLocation) || hostLocation.getParent() == null) {
            return Optional.empty();
        }
        return Optional.of(hostLocation.getParent().resolve(DEFAULT_DIR_NAME));
    }

    /** The directory {@link #load} reads when given none, or null. */
    public Path defaultDir() {
        return defaultDir;
    }

    /**
     * All device types.
     *
     * @param pluginsDir the plugins directory, or null for the default one (skipped if it does not
     *                   exist); the caller has checked that a given directory exists
     */
    public DeviceTypes load(Path pluginsDir) {
        DeviceTypes.Builder types = DeviceTypes.builder().addBuiltIns(host);
        builtIns.problems().forEach(types::problem);
        builtIns.plugins().forEach(p -> types.addPlugin(p, host));
        Path dir = pluginsDir != null ? pluginsDir : defaultDir;
        if (dir != null && (pluginsDir != null || Files.isDirectory(dir))) {
            addDirectory(types, dir);
        }
        return types.build();
    }

    private void addDirectory(DeviceTypes.Builder types, Path dir) {
        List<String> problems = new ArrayList<>();
        try {
            for (Plugin plugin : Plugin.scan(dir, problems)) {
                types.addPlugin(plugin, host);
            }
        } catch (IOException e) {
            problems.add(dir + ": cannot list the plugins directory: " + IoErrors.describe(e));
        }
        problems.forEach(types::problem);
    }
}
