package org.jvhost.host.plugin;

import java.io.IOException;
import java.io.StringWriter;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.jar.Attributes;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import java.util.stream.Stream;
import javax.tools.JavaCompiler;
import javax.tools.StandardJavaFileManager;
import javax.tools.ToolProvider;
import org.jvhost.spi.DeviceProvider;

/**
 * Builds plugin jars the way a plugin author's build would, at test time: compiles the sources under
 * the test resource {@code plugin-sources/NAME} (plus {@code plugin-sources/common}) with the system
 * Java compiler against the SPI jar only, and jars the classes and resources with a manifest. The
 * plugins are therefore never on the test's class path.
 */
public final class PluginJars {

    private PluginJars() {
    }

    /** Where the host's SPI classes come from: the spi jar (or classes directory) on the test class path. */
    public static Path spiLocation() {
        try {
            return Path.of(DeviceProvider.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Builds {@code jar} from {@code plugin-sources/name}.
     *
     * @param version  the manifest's {@code Implementation-Version}, or null for none
     * @param leaveOut path prefixes of classes or resources to leave out ({@code com/example/missing/Helper},
     *                 {@code META-INF/services/})
     */
    public static Path build(String name, Path jar, String version, String... leaveOut) throws IOException {
        Path work = Files.createTempDirectory("jvhost-plugin-build-");
        try {
            Path classes = work.resolve("classes");
            Files.createDirectories(classes);
            List<Path> sources = new ArrayList<>(javaFiles(sourceRoot("common")));
            sources.addAll(javaFiles(sourceRoot(name)));
            compile(sources, List.of(spiLocation()), classes);
            Files.createDirectories(jar.toAbsolutePath().getParent());
            try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(jar), manifest(version))) {
                addTree(out, classes, leaveOut);
                String[] resourceSkips = java.util.Arrays.copyOf(leaveOut, leaveOut.length + 1);
                resourceSkips[leaveOut.length] = ".java";
                addTree(out, sourceRoot(name), resourceSkips);
            }
            return jar;
        } finally {
            deleteTree(work);
        }
    }

    /**
     * Builds {@code jar} from {@code plugin-sources/name} the way its author built it against an older SPI:
     * the SPI sources of that release ({@code plugin-sources/spiSources}, taken from git history) are
     * compiled first, and the plugin against them alone. Neither {@code common} nor the old SPI classes go
     * into the jar: at run time the plugin meets the host's SPI.
     */
    public static Path buildAgainstOldSpi(String spiSources, String name, Path jar) throws IOException {
        Path work = Files.createTempDirectory("jvhost-plugin-build-");
        try {
            Path spi = Files.createDirectories(work.resolve("spi"));
            compile(javaFiles(sourceRoot(spiSources)), List.of(), spi);
            Path classes = Files.createDirectories(work.resolve("classes"));
            compile(javaFiles(sourceRoot(name)), List.of(spi), classes);
            Files.createDirectories(jar.toAbsolutePath().getParent());
            try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(jar), manifest(null))) {
                addTree(out, classes);
                addTree(out, sourceRoot(name), ".java");
            }
            return jar;
        } finally {
            deleteTree(work);
        }
    }

    private static List<Path> javaFiles(Path root) throws IOException {
        try (Stream<Path> files = Files.walk(root)) {
            return files.filter(f -> f.toString().endsWith(".java")).toList();
        }
    }

    /** A file named .jar that is not one. */
    public static Path notAJar(Path file) throws IOException {
        Files.createDirectories(file.toAbsolutePath().getParent());
        return Files.writeString(file, "this is not a zip archive\n");
    }

    private static Path sourceRoot(String name) {
        try {
            return Path.of(PluginJars.class.getResource("/plugin-sources/" + name).toURI());
        } catch (URISyntaxException | NullPointerException e) {
            throw new IllegalArgumentException("no test resource plugin-sources/" + name, e);
        }
    }

    /** Compiles {@code sources} into {@code classes} with only {@code classpath} (none: the JDK alone). */
    private static void compile(List<Path> sources, List<Path> classpath, Path classes) throws IOException {
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        if (javac == null) {
            throw new IllegalStateException("no system Java compiler: the tests need a JDK, not a JRE");
        }
        StringWriter diagnostics = new StringWriter();
        try (StandardJavaFileManager files = javac.getStandardFileManager(null, null, null)) {
            List<String> options = new ArrayList<>(List.of("--release", "17", "-proc:none", "-implicit:none",
                    "-d", classes.toString()));
            if (!classpath.isEmpty()) {
                options.addAll(List.of("-classpath", classpath.stream().map(Path::toString)
                        .collect(java.util.stream.Collectors.joining(java.io.File.pathSeparator))));
            }
            boolean ok = javac.getTask(diagnostics, files, null, options, null,
                    files.getJavaFileObjectsFromPaths(sources)).call();
            if (!ok) {
                throw new IllegalStateException("compiling the test plugin failed:\n" + diagnostics);
            }
        }
    }

    private static Manifest manifest(String version) {
        Manifest m = new Manifest();
        m.getMainAttributes().put(Attributes.Name.MANIFEST_VERSION, "1.0");
        if (version != null) {
            m.getMainAttributes().put(Attributes.Name.IMPLEMENTATION_VERSION, version);
        }
        return m;
    }

    /** Adds the files under {@code root}, except those whose relative path starts with or ends with a skip. */
    private static void addTree(JarOutputStream out, Path root, String... skip) throws IOException {
        List<Path> files;
        try (Stream<Path> walk = Files.walk(root)) {
            files = walk.filter(Files::isRegularFile).sorted().toList();
        }
        for (Path file : files) {
            String entry = root.relativize(file).toString().replace('\\', '/');
            if (skipped(entry, skip) || entry.equals("README.md")) {
                continue;
            }
            out.putNextEntry(new JarEntry(entry));
            out.write(Files.readAllBytes(file));
            out.closeEntry();
        }
    }

    private static boolean skipped(String entry, String... skip) {
        for (String s : skip) {
            if (entry.startsWith(s) || entry.endsWith(s)) {
                return true;
            }
        }
        return false;
    }

    static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path p : walk.sorted((a, b) -> b.compareTo(a)).toList()) {
                Files.delete(p);
            }
        }
    }
}
