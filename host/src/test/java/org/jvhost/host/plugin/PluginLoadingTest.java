package org.jvhost.host.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.DeviceProvider;
import org.jvhost.spi.SpiVersion;
import org.jvhost.spi.VhostUserDevice;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Plugins built at test time (see {@link PluginJars}) loaded through {@link DeviceTypeLoader}: isolation
 * of each plugin's classes, and every way a plugin can be broken, reported by file and cause while the
 * others keep working. The loopback, net and blk devices are on this test's class path, so they are
 * class-path built-ins.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class PluginLoadingTest {

    @TempDir
    static Path jars;

    @TempDir
    Path plugins;

    @BeforeAll
    static void buildPlugins() throws IOException {
        for (String name : List.of("echo", "liba", "libb", "throwing", "future", "dup", "errors")) {
            PluginJars.build(name, jars.resolve(name + ".jar"), name.equals("echo") ? "1.2.3" : null);
        }
        PluginJars.build("missing", jars.resolve("missing.jar"), null, "com/example/missing/Helper");
        // A plugin spread over two jars: the provider, and its library in a jar of its own.
        PluginJars.build("liba", jars.resolve("liba-provider.jar"), "2.0", "com/example/shared/");
        PluginJars.build("liba", jars.resolve("liba-lib.jar"), null, "com/example/liba/", "META-INF/services/");
    }

    private Path drop(String jarName) throws IOException {
        return Files.copy(jars.resolve(jarName), plugins.resolve(jarName));
    }

    private DeviceTypes load() {
        return new DeviceTypeLoader(getClass().getClassLoader(), BuiltInPlugins.none(), null).load(plugins);
    }

    private static String config(VhostUserDevice device) {
        byte[] bytes = new byte[device.configSize()];
        device.readConfig(0, bytes);
        return new String(bytes, StandardCharsets.US_ASCII).trim().replace("\0", "");
    }

    private static VhostUserDevice create(DeviceProvider provider, Map<String, String> options) throws Exception {
        return provider.create(new DeviceOptions(options), () -> "test@" + provider.type());
    }

    @Test
    void aJarInThePluginsDirectoryBecomesADeviceTypeWithItsFileAndVersion() throws Exception {
        Path echo = drop("echo.jar");
        DeviceTypes types = load();
        assertEquals(List.of(), types.problems());
        assertEquals(List.of("blk", "echo", "loopback", "net"), types.names());
        DeviceTypes.DeviceType type = types.resolve("echo");
        assertEquals(echo.toString(), type.origin());
        assertEquals("1.2.3", type.version());
        assertEquals("hi there", config(create(type.provider(), Map.of("greeting", "hi there"))));
        DeviceTypes.DeviceType loopback = types.resolve("loopback");
        assertEquals(DeviceTypes.BUILT_IN, loopback.origin());
    }

    @Test
    void aPluginIsNotOnTheHostClassPathAndSeesOnlyTheSpiAndSlf4jOfTheHost() throws Exception {
        drop("echo.jar");
        DeviceProvider echo = load().resolve("echo").provider();
        ClassLoader plugin = echo.getClass().getClassLoader();
        assertInstanceOf(PluginClassLoader.class, plugin);
        assertThrows(ClassNotFoundException.class, () -> Class.forName("com.example.echo.EchoProvider"));
        assertSame(DeviceProvider.class, plugin.loadClass(DeviceProvider.class.getName()));
        assertSame(SpiVersion.class, plugin.loadClass(SpiVersion.class.getName()));
        assertSame(org.slf4j.Logger.class, plugin.loadClass("org.slf4j.Logger"));
        for (String hostOnly : List.of("org.jvhost.engine.server.Host", "org.jvhost.host.plugin.DeviceTypes",
                "picocli.CommandLine", "com.sun.jna.Native", "org.jvhost.device.loopback.LoopbackProvider")) {
            assertThrows(ClassNotFoundException.class, () -> plugin.loadClass(hostOnly), hostOnly);
        }
        assertEquals(String.class, plugin.loadClass("java.lang.String"));
        assertEquals(1, Collections.list(plugin.getResources("META-INF/services/" + DeviceProvider.class.getName())).size(),
                "only the plugin's own service file");
    }

    @Test
    void twoPluginsBundlingDifferentVersionsOfOneLibraryEachUseTheirOwn() throws Exception {
        drop("liba.jar");
        drop("libb.jar");
        DeviceTypes types = load();
        assertEquals(List.of(), types.problems());
        DeviceProvider a = types.resolve("liba").provider();
        DeviceProvider b = types.resolve("libb").provider();
        assertEquals("reports shared lib A", a.description());
        assertEquals("reports shared lib B", b.description());
        assertEquals("shared lib A", config(create(a, Map.of())));
        assertEquals("shared lib B", config(create(b, Map.of())));
        ClassLoader la = a.getClass().getClassLoader();
        ClassLoader lb = b.getClass().getClassLoader();
        assertNotSame(la.loadClass("com.example.shared.Lib"), lb.loadClass("com.example.shared.Lib"));
    }

    @Test
    void aSubDirectoryOfJarsIsOnePlugin() throws Exception {
        Path dir = Files.createDirectory(plugins.resolve("liba-with-deps"));
        Files.copy(jars.resolve("liba-provider.jar"), dir.resolve("liba-provider.jar"));
        Files.copy(jars.resolve("liba-lib.jar"), dir.resolve("liba-lib.jar"));
        Files.createDirectory(plugins.resolve("empty"));
        Files.writeString(plugins.resolve("README.txt"), "not a plugin, ignored");
        DeviceTypes types = load();
        assertEquals("reports shared lib A", types.resolve("liba").description());
        DeviceTypes.DeviceType liba = types.resolve("liba");
        assertEquals(dir.toString(), liba.origin());
        assertEquals("2.0", liba.version());
        assertEquals(List.of(plugins.resolve("empty") + ": plugin directory holds no .jar files"), types.problems());
    }

    @Test
    void brokenPluginsAreReportedByFileAndCauseAndTheRestStillWork() throws Exception {
        drop("echo.jar");
        Path throwing = drop("throwing.jar");
        Path missing = drop("missing.jar");
        Path future = drop("future.jar");
        Path garbage = PluginJars.notAJar(plugins.resolve("garbage.jar"));
        Path empty = emptyJar(plugins.resolve("empty.jar"));
        DeviceTypes types = load();

        assertEquals(List.of("blk", "echo", "loopback", "net"), types.names());
        assertEquals("hello", config(create(types.resolve("echo").provider(), Map.of("greeting", "hello"))));
        List<String> problems = types.problems();
        assertEquals(5, problems.size(), problems.toString());
        assertProblem(problems, throwing + ": ", "com.example.throwing.ThrowingProvider",
                "licence file /etc/throwing.lic is missing");
        assertProblem(problems, missing + ": ", "com/example/missing/Helper");
        assertProblem(problems, future + ": refused com.example.future.FutureProvider: it needs device SPI 2.x, "
                + "this host has SPI " + SpiVersion.string());
        assertProblem(problems, garbage + ": cannot open garbage.jar as a jar");
        assertProblem(problems, empty + ": no device provider");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> types.resolve("future"));
        assertTrue(e.getMessage().startsWith("unknown device type 'future'"), e.getMessage());
    }

    @Test
    void errorsFromAProvidersCodeAreThePluginsFailureNamedByClassAndFile() throws Exception {
        drop("echo.jar");
        Path errors = drop("errors.jar");
        DeviceTypes types = load();
        assertEquals(List.of("asserting", "bad-counters", "blk", "echo", "loopback", "net", "null-device"), types.names());
        assertEquals(List.of(errors + ": refused com.example.errors.RecursiveTypeProvider: java.lang.StackOverflowError"),
                types.problems());
        DeviceOptions none = new DeviceOptions(Map.of());
        PluginException thrown = assertThrows(PluginException.class,
                () -> types.resolve("asserting").create(none, () -> "a"));
        assertEquals("com.example.errors.AssertingProvider from " + errors + ": create() failed: java.lang.AssertionError: "
                + "asserting plugin: unreachable state in create", thrown.getMessage());
        assertInstanceOf(AssertionError.class, thrown.getCause());
        PluginException nothing = assertThrows(PluginException.class,
                () -> types.resolve("null-device").create(none, () -> "n"));
        assertEquals("com.example.errors.NullProvider from " + errors + ": create() returned null instead of a device",
                nothing.getMessage());
        assertEquals("hello", config(types.resolve("echo").create(new DeviceOptions(Map.of("greeting", "hello")), () -> "e")));
    }

    @Test
    void aPluginClaimingABuiltInTypeIsACollisionNamingBothAndNeitherWins() throws Exception {
        Path dup = drop("dup.jar");
        drop("echo.jar");
        DeviceTypes types = load();
        String both = "org.jvhost.device.loopback.LoopbackProvider from built-in and com.example.dup.DupProvider from " + dup;
        assertEquals(List.of("refused device type 'loopback': provided by both " + both), types.problems());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> types.resolve("loopback"));
        assertTrue(e.getMessage().contains(both), e.getMessage());
        assertEquals(List.of("blk", "echo", "net"), types.names());
    }

    @Test
    void twoPluginsClaimingOneTypeAreBothRefused() throws Exception {
        Path one = drop("echo.jar");
        Path two = Files.copy(jars.resolve("echo.jar"), plugins.resolve("echo-copy.jar"));
        DeviceTypes types = load();
        assertEquals(List.of("blk", "loopback", "net"), types.names());
        String problem = types.problems().get(0);
        assertTrue(problem.contains("from " + one) && problem.contains("from " + two), problem);
    }

    @Test
    void builtInPluginsAreCopiedOutOfTheHostJarLoadedLikeAnyPluginAndDeletedOnClose() throws Exception {
        Path hostJar = plugins.resolve("fake-host.jar");
        try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(hostJar))) {
            out.putNextEntry(new JarEntry(BuiltInPlugins.FOLDER + "/"));
            out.putNextEntry(new JarEntry(BuiltInPlugins.FOLDER + "/echo.jar"));
            out.write(Files.readAllBytes(jars.resolve("echo.jar")));
            out.putNextEntry(new JarEntry("other/liba.jar"));
            out.write(Files.readAllBytes(jars.resolve("liba.jar")));
        }
        Path copy;
        try (BuiltInPlugins builtIns = BuiltInPlugins.find(hostJar)) {
            assertEquals(1, builtIns.plugins().size());
            Plugin echo = builtIns.plugins().get(0);
            assertEquals("built-in (fake-host.jar!/jvhost-plugins/echo.jar)", echo.origin());
            copy = echo.jars().get(0);
            assertTrue(Files.isRegularFile(copy));
            DeviceTypes types = new DeviceTypeLoader(getClass().getClassLoader(), builtIns,
                    DeviceTypeLoader.defaultDirFor(hostJar).orElseThrow()).load(null);
            assertEquals(List.of(), types.problems(), "a missing default plugins directory is fine");
            DeviceTypes.DeviceType type = types.resolve("echo");
            assertEquals("echo", type.provider().type());
            assertEquals(echo.origin(), type.origin());
            assertInstanceOf(PluginClassLoader.class, type.provider().getClass().getClassLoader());
        }
        assertFalse(Files.exists(copy));
        assertFalse(Files.exists(copy.getParent()));
    }

    @Test
    void theDefaultPluginsDirectoryIsNextToTheJarAndReadWhenPresent() throws Exception {
        Path hostJar = Files.writeString(plugins.resolve("jvhost.jar"), "");
        Path dflt = DeviceTypeLoader.defaultDirFor(hostJar).orElseThrow();
        assertEquals(plugins.resolve("plugins"), dflt);
        assertTrue(DeviceTypeLoader.defaultDirFor(plugins).isEmpty(), "no default when run from a directory");
        Files.createDirectory(dflt);
        Files.copy(jars.resolve("echo.jar"), dflt.resolve("echo.jar"));
        DeviceTypes types = new DeviceTypeLoader(getClass().getClassLoader(), BuiltInPlugins.none(), dflt).load(null);
        assertEquals(List.of("blk", "echo", "loopback", "net"), types.names());
    }

    private static Path emptyJar(Path file) throws IOException {
        try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(file))) {
            out.putNextEntry(new JarEntry("readme.txt"));
            out.write("no provider here".getBytes(StandardCharsets.US_ASCII));
        }
        return file;
    }

    private static void assertProblem(List<String> problems, String... parts) {
        assertTrue(problems.stream().anyMatch(p -> {
            for (String part : parts) {
                if (!p.contains(part)) {
                    return false;
                }
            }
            return p.startsWith(parts[0]);
        }), () -> "no problem with " + List.of(parts) + " in " + problems);
    }
}
