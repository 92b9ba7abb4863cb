package org.jvhost.host.plugin;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.stream.Stream;

/**
 * The plugin jars shipped inside jvhost.jar under {@value #FOLDER} (the build puts the loopback device
 * there). They are loaded by exactly the code that loads {@code plugins/}, so a built-in device is
 * isolated like any third-party one: a class loader cannot read a jar nested in a jar, so each is copied
 * to a private temporary directory first, which {@link #close()} deletes.
 */
public final class BuiltInPlugins implements AutoCloseable {

    /** Where the build puts plugin jars inside jvhost.jar (or the host's classes directory). */
    public static final String FOLDER = "jvhost-plugins";

    private final List<Plugin> plugins;
    private final List<String> problems;
    private final Path tempDir;

    private BuiltInPlugins(List<Plugin> plugins, List<String> problems, Path tempDir) {
        this.plugins = List.copyOf(plugins);
        this.problems = List.copyOf(problems);
        this.tempDir = tempDir;
    }

    /** No built-in plugins (tests, or a host run from a location that holds none). */
    public static BuiltInPlugins none() {
        return new BuiltInPlugins(List.of(), List.of(), null);
    }

    /**
     * The plugins embedded at {@code hostLocation}: the host's jar (entries {@code jvhost-plugins/*.jar},
     * copied out) or its classes directory (files {@code jvhost-plugins/*.jar}, used in place). Never
     * throws: a jar that cannot be copied out becomes a problem and is left out.
     */
    public static BuiltInPlugins find(Path hostLocation) {
        if (Files.isDirectory(hostLocation)) {
            return inDirectory(hostLocation);
        }
        if (Files.isRegularFile(hostLocation)) {
            return inJar(hostLocation);
        }
        return none();
    }

    private static BuiltInPlugins inDirectory(Path classes) {
        Path folder = classes.resolve(FOLDER);
        List<Plugin> plugins = new ArrayList<>();
        List<String> problems = new ArrayList<>();
        if (Files.isDirectory(folder)) {
            try (Stream<Path> files = Files.list(folder)) {
                files.filter(f -> f.getFileName().toString().endsWith(".jar")).sorted()
                        .forEach(f -> plugins.add(new Plugin("built-in (" + FOLDER + "/" + f.getFileName() + ")", List.of(f))));
            } catch (IOException e) {
                problems.add("built-in plugins in " + folder + ": cannot list them: " + e);
            }
        }
        return new BuiltInPlugins(plugins, problems, null);
    }

    private static BuiltInPlugins inJar(Path hostJar) {
        List<Plugin> plugins = new ArrayList<>();
        List<String> problems = new ArrayList<>();
        Path tempDir = null;
        try (JarFile jar = new JarFile(hostJar.toFile())) {
            for (JarEntry entry : Collections.list(jar.entries())) {
                String name = entry.getName();
                if (!name.startsWith(FOLDER + "/") || !name.endsWith(".jar") || name.indexOf('/', FOLDER.length() + 1) >= 0) {
                    continue;
                }
                if (tempDir == null) {
                    // createTempDirectory makes it rwx------: no other user can swap the jars we load.
                    tempDir = Files.createTempDirectory("jvhost-plugins-");
                }
                Path copy = tempDir.resolve(name.substring(FOLDER.length() + 1));
                try (InputStream in = jar.getInputStream(entry)) {
                    Files.copy(in, copy, StandardCopyOption.REPLACE_EXISTING);
                }
                plugins.add(new Plugin("built-in (" + hostJar.getFileName() + "!/" + name + ")", List.of(copy)));
            }
        } catch (IOException e) {
            problems.add("built-in plugins in " + hostJar + ": cannot copy them out: " + e);
        }
        plugins.sort(Comparator.comparing(Plugin::origin));
        return new BuiltInPlugins(plugins, problems, tempDir);
    }

    /** The embedded plugins, sorted by name. */
    public List<Plugin> plugins() {
        return plugins;
    }

    /** Why an embedded plugin could not be made loadable; empty normally. */
    public List<String> problems() {
        return problems;
    }

    /**
     * Deletes the copies. Their class loaders keep working for what they already loaded (Linux keeps an
     * unlinked open file), and nothing loads new classes once the host is shutting down.
     */
    @Override
    public void close() {
        if (tempDir == null) {
            return;
        }
        try (Stream<Path> files = Files.list(tempDir)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Files.deleteIfExists(f);
            }
            Files.deleteIfExists(tempDir);
        } catch (IOException e) {
            System.err.println("jvhost: could not delete " + tempDir + ": " + e);
        }
    }
}
