package org.jvhost.host.plugin;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.jvhost.host.IoErrors;

/**
 * One plugin: the jars that share one {@link PluginClassLoader}.
 *
 * @param origin what {@code jvhost devices} and every problem name it by: the plugin's file or
 *               directory, or {@code built-in (...)} for a jar embedded in jvhost.jar
 * @param jars   the jars, in class-path order
 */
public record Plugin(String origin, List<Path> jars) {

    public Plugin {
        jars = List.copyOf(jars);
    }

    /**
     * The plugins in {@code dir}: each {@code *.jar} file is one plugin, and each sub-directory is one
     * plugin made of the {@code *.jar} files directly inside it (a plugin with unshaded dependencies).
     * Other files are ignored. Sorted by name, so the order (and every message) is the same on each run.
     *
     * @param problems receives one sentence per entry that cannot be a plugin (an unreadable or empty
     *                 sub-directory), naming it
     * @throws IOException if {@code dir} itself cannot be listed
     */
    public static List<Plugin> scan(Path dir, List<String> problems) throws IOException {
        List<Plugin> plugins = new ArrayList<>();
        for (Path entry : sortedEntries(dir)) {
            if (Files.isDirectory(entry)) {
                scanSubDirectory(entry, plugins, problems);
            } else if (isJar(entry)) {
                plugins.add(new Plugin(entry.toString(), List.of(entry)));
            }
        }
        return plugins;
    }

    private static void scanSubDirectory(Path sub, List<Plugin> plugins, List<String> problems) {
        try {
            List<Path> jars = new ArrayList<>();
            for (Path file : sortedEntries(sub)) {
                if (isJar(file)) {
                    jars.add(file);
                }
            }
            if (jars.isEmpty()) {
                problems.add(sub + ": plugin directory holds no .jar files");
            } else {
                plugins.add(new Plugin(sub.toString(), jars));
            }
        } catch (IOException e) {
            problems.add(sub + ": cannot list plugin directory: " + IoErrors.describe(e));
        }
    }

    private static boolean isJar(Path file) {
        return Files.isRegularFile(file) && file.getFileName().toString().endsWith(".jar");
    }

    private static List<Path> sortedEntries(Path dir) throws IOException {
        List<Path> entries = new ArrayList<>();
        try (DirectoryStream<Path> stream = Files.newDirectoryStream(dir)) {
            stream.forEach(entries::add);
        }
        entries.sort(null);
        return entries;
    }
}
