package org.jvhost.host.plugin;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.jvhost.host.IoErrors;

/**
 * The plugin jars shipped inside jvhost.jar under {@value #FOLDER} (the build puts the loopback device
 * there). They are loaded by exactly the code that loads {@code plugins/}, so a built-in device is
 * isolated like any third-party one: a class loader cannot read a jar nested in a jar, so each is copied
 * to a private temporary directory first, which {@link #close()} deletes.
 *
 * <p>The directory's name holds the owner's pid ({@code jvhost-plugins-PID-RANDOM}), so that a run killed
 * with SIGKILL, which cannot delete it, leaves something the next start can recognise as orphaned and
 * remove ({@link #removeOrphans}).
 */
public final class BuiltInPlugins implements AutoCloseable {

    /** Where the build puts plugin jars inside jvhost.jar (or the host's classes directory). */
    public static final String FOLDER = "jvhost-plugins";
    private static final String TEMP_PREFIX = "jvhost-plugins-";
    private static final Pattern OWNED = Pattern.compile(Pattern.quote(TEMP_PREFIX) + "(\\d+)-\\d+");

    private final List<Plugin> plugins;
    private final List<String> problems;
    private final Path tempDir;
    private boolean closed;

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
            removeOrphans(Path.of(System.getProperty("java.io.tmpdir")));
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
                problems.add("built-in plugins in " + folder + ": cannot list them: " + IoErrors.describe(e));
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
                    tempDir = Files.createTempDirectory(TEMP_PREFIX + ProcessHandle.current().pid() + "-");
                }
                Path copy = tempDir.resolve(name.substring(FOLDER.length() + 1));
                try (InputStream in = jar.getInputStream(entry)) {
                    Files.copy(in, copy, StandardCopyOption.REPLACE_EXISTING);
                }
                plugins.add(new Plugin("built-in (" + hostJar.getFileName() + "!/" + name + ")", List.of(copy)));
            }
        } catch (IOException e) {
            problems.add("built-in plugins in " + hostJar + ": cannot copy them out: " + IoErrors.describe(e));
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
    public synchronized void close() {
        if (tempDir == null || closed) {
            return;
        }
        closed = true; // the shutdown hook and main's try-with-resources may both get here
        try {
            delete(tempDir);
        } catch (IOException e) {
            System.err.println("jvhost: could not delete " + tempDir + ": " + IoErrors.describe(e));
        }
    }

    /**
     * Deletes the {@code jvhost-plugins-PID-*} directories in {@code tmp} whose owner is gone: no process
     * has that pid, or the one that has it started after the directory was last written (the pid was
     * reused). Directories of live runs, of other users (not deletable) and of other names are left alone.
     */
    static void removeOrphans(Path tmp) {
        try (DirectoryStream<Path> dirs = Files.newDirectoryStream(tmp, TEMP_PREFIX + "*")) {
            for (Path dir : dirs) {
                Matcher m = OWNED.matcher(dir.getFileName().toString());
                if (m.matches() && isOrphan(dir, Long.parseLong(m.group(1)))) {
                    try {
                        delete(dir);
                    } catch (IOException e) {
                        // another user's, or being removed by someone else: not ours to worry about
                    }
                }
            }
        } catch (IOException | RuntimeException e) {
            // an unreadable temporary directory: the copies below will say so if it matters
        }
    }

    private static boolean isOrphan(Path dir, long pid) throws IOException {
        Optional<ProcessHandle> owner = ProcessHandle.of(pid).filter(ProcessHandle::isAlive);
        if (owner.isEmpty()) {
            return true;
        }
        Optional<Instant> started = owner.get().info().startInstant();
        Instant written = Files.getLastModifiedTime(dir, LinkOption.NOFOLLOW_LINKS).toInstant();
        return started.isPresent() && started.get().isAfter(written);
    }

    private static void delete(Path dir) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Files.deleteIfExists(f);
            }
        } catch (NoSuchFileException e) {
            return; // already gone
        }
        Files.deleteIfExists(dir);
    }
}
