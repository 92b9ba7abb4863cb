package org.jvhost.host.cli;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.CodeSource;
import java.util.Collection;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.stream.Stream;

/**
 * Loads and initializes, ahead of time, every class of jvhost's own packages in the jars (or class
 * folders) that hold some given classes. A successor does this before it asks its predecessor to pause:
 * the classes a takeover runs (session replay, device creation, native bindings) would otherwise load
 * one by one while every ring stands still. A class that does not load is skipped: it fails again, with
 * its real error, where it is used.
 */
final class ClassPreload {
    private ClassPreload() {
    }

    /**
     * Preloads, for each of {@code anchors}, the classes of its code source under its top two package
     * levels ({@code org/jvhost/}), with its class loader.
     *
     * @return how many classes were loaded
     */
    static int preload(Collection<Class<?>> anchors) {
        int n = 0;
        for (Class<?> anchor : anchors) {
            n += preload(anchor);
        }
        return n;
    }

    private static int preload(Class<?> anchor) {
        CodeSource source = anchor.getProtectionDomain().getCodeSource();
        String[] parts = anchor.getName().split("\\.");
        if (source == null || source.getLocation() == null || parts.length < 3) {
            return 0;
        }
        String prefix = parts[0] + "/" + parts[1] + "/";
        Path where;
        try {
            where = Path.of(source.getLocation().toURI());
        } catch (URISyntaxException | IllegalArgumentException e) {
            return 0;
        }
        try {
            return Files.isDirectory(where) ? fromFolder(where, prefix, anchor.getClassLoader())
                    : fromJar(where, prefix, anchor.getClassLoader());
        } catch (IOException e) {
            return 0;
        }
    }

    private static int fromJar(Path jar, String prefix, ClassLoader loader) throws IOException {
        int n = 0;
        try (JarFile f = new JarFile(jar.toFile())) {
            for (JarEntry e : (Iterable<JarEntry>) f.stream()::iterator) {
                if (e.getName().startsWith(prefix) && e.getName().endsWith(".class")) {
                    n += load(e.getName(), loader);
                }
            }
        }
        return n;
    }

    private static int fromFolder(Path root, String prefix, ClassLoader loader) throws IOException {
        try (Stream<Path> files = Files.walk(root.resolve(prefix))) {
            return files.filter(p -> p.toString().endsWith(".class"))
                    .mapToInt(p -> load(root.relativize(p).toString(), loader)).sum();
        }
    }

    private static int load(String entry, ClassLoader loader) {
        String name = entry.substring(0, entry.length() - ".class".length()).replace('/', '.');
        if (name.endsWith("package-info") || name.endsWith("module-info")) {
            return 0;
        }
        try {
            Class.forName(name, true, loader);
            return 1;
        } catch (LinkageError | ClassNotFoundException | RuntimeException e) {
            return 0; // fails again where it is used, with its real error
        }
    }
}
