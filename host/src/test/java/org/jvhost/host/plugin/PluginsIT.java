package org.jvhost.host.plugin;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.jvhost.engine.protocol.ConfigLayout;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.spi.SpiVersion;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.spi.virtio.VirtioNet;
import org.jvhost.testkit.FakeGuestMemory;
import org.jvhost.testkit.MockSplitQueue;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Drop-in plugins end to end: plugin jars compiled during the test (never on the host's class path) are
 * dropped into a plugins directory, and the real {@code java -jar jvhost.jar} lists them, reports the
 * broken ones by file and cause, and serves the good ones to the scripted front-end, while a plugin
 * throwing from its queue handling fails alone. The loopback device here is the plugin jar built into
 * jvhost.jar, loaded through the same code path.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class PluginsIT {
    private static final long WAIT_MS = 20_000;
    private static final String LOOPBACK_ORIGIN = "built-in (jvhost.jar!/jvhost-plugins/loopback.jar)";

    @TempDir
    static Path shared;
    static Path jvhostJar;
    static Path plugins;

    @TempDir
    Path dir;
    private final List<Process> started = new ArrayList<>();

    @BeforeAll
    static void buildPlugins() throws IOException {
        String jar = System.getProperty("jvhost.jar");
        assumeTrue(jar != null && Files.isRegularFile(Path.of(jar)), "jvhost.jar is built (system property jvhost.jar)");
        jvhostJar = Path.of(jar);
        plugins = Files.createDirectory(shared.resolve("plugins"));
        PluginJars.build("echo", plugins.resolve("echo.jar"), "1.2.3");
        PluginJars.build("liba", plugins.resolve("liba.jar"), null);
        PluginJars.build("libb", plugins.resolve("libb.jar"), null);
        PluginJars.build("crash", plugins.resolve("crash.jar"), "0.0.1");
        PluginJars.build("throwing", plugins.resolve("throwing.jar"), null);
        PluginJars.build("missing", plugins.resolve("missing.jar"), null, "com/example/missing/Helper");
        PluginJars.build("future", plugins.resolve("future.jar"), null, "org/jvhost/spi/");
    }

    @AfterEach
    void killLeftovers() {
        for (Process p : started) {
            if (p.isAlive()) {
                p.destroyForcibly();
            }
        }
    }

    @Test
    void devicesListsPluginsAndTheBuiltInWithOriginAndVersionAndReportsBrokenOnesByFileAndCause() throws Exception {
        Result r = run("devices", "--plugins", plugins.toString());
        assertEquals(0, r.code, r.toString());
        assertTrue(r.out.contains("echo - test plugin: config space holds the greeting option\n    origin   "
                + plugins.resolve("echo.jar") + "\n    version  1.2.3\n"), r.toString());
        assertTrue(r.out.contains("loopback - virtio-net device"), r.toString());
        assertTrue(r.out.contains("    origin   " + LOOPBACK_ORIGIN + "\n"), r.toString());
        assertTrue(r.out.contains("liba - reports shared lib A\n"), "each plugin sees its own com.example.shared.Lib: " + r);
        assertTrue(r.out.contains("libb - reports shared lib B\n"), r.toString());
        assertLine(r.err, "error: " + plugins.resolve("throwing.jar") + ": ", "licence file /etc/throwing.lic is missing");
        assertLine(r.err, "error: " + plugins.resolve("missing.jar") + ": ", "com/example/missing/Helper");
        assertLine(r.err, "error: " + plugins.resolve("future.jar") + ": ",
                "it needs device SPI 2.x, this host has SPI " + SpiVersion.string());
        assertFalse(r.out.contains("throwing -") || r.out.contains("future -") || r.out.contains("missing -"), r.out);
        assertNoExtractedPluginsLeft();
    }

    @Test
    void servesPluginAndBuiltInDevicesAndAPluginThrowingFromItsQueueFailsAlone() throws Exception {
        Path echoSock = dir.resolve("echo.sock");
        Path loopSock = dir.resolve("lo.sock");
        Path crashSock = dir.resolve("crash.sock");
        Process serve = start("serve", "--workers", "2", "--plugins", plugins.toString(),
                "--device", "echo:socket=" + echoSock + ",greeting=hi-from-echo",
                "--device", "loopback:socket=" + loopSock,
                "--device", "crash:socket=" + crashSock);
        awaitLog(serve, "serving 3 device(s)");

        crashTheCrashDevice(crashSock);
        awaitLog(serve, "crash@" + crashSock + ": queue 0: ", "crash plugin bug: queue handler failed");
        assertTrue(serve.isAlive(), "the host survives a plugin's exception");

        try (ScriptedFrontend fe = ScriptedFrontend.connect(echoSock)) {
            assertEquals("hi-from-echo", new String(negotiateAndReadConfig(fe, 1L << 5, 16), StandardCharsets.US_ASCII)
                    .replace("\0", ""));
        }
        try (ScriptedFrontend fe = ScriptedFrontend.connect(loopSock)) {
            byte[] mac = negotiateAndReadConfig(fe, VirtioNet.F_MAC | VirtioNet.F_MRG_RXBUF, 6);
            assertArrayEquals(new byte[] {2, 0, 0, 0, 0, 1}, mac, "loopback's default MAC");
        }
        try (ScriptedFrontend fe = ScriptedFrontend.connect(crashSock)) {
            assertTrue((fe.getFeatures() & VirtioFeatures.VERSION_1) != 0, "the failed device still answers its control requests");
        }

        serve.destroy(); // SIGTERM
        assertTrue(serve.waitFor(WAIT_MS, TimeUnit.MILLISECONDS), "jvhost stops on SIGTERM");
        assertEquals(0, serve.exitValue(), read(serve, "err"));
        assertNoExtractedPluginsLeft();
    }

    @Test
    void theCopiesLeftByAKilledRunAreRemovedAtTheNextStart() throws Exception {
        Process killed = start("serve", "--device", "loopback:socket=" + dir.resolve("a.sock"));
        awaitLog(killed, "serving 1 device(s)");
        killed.destroyForcibly(); // SIGKILL: no shutdown hook deletes the copies
        assertTrue(killed.waitFor(WAIT_MS, TimeUnit.MILLISECONDS));
        List<Path> left;
        try (Stream<Path> files = Files.list(tmp())) {
            left = files.filter(f -> f.getFileName().toString().startsWith("jvhost-plugins-" + killed.pid() + "-")).toList();
        }
        assertEquals(1, left.size(), "a SIGKILLed run leaves its copies");

        Result next = run("devices");
        assertEquals(0, next.code(), next.err());
        assertNoExtractedPluginsLeft();
    }

    @Test
    void aPluginClaimingTheBuiltInTypeIsACollisionNamingBothSources() throws Exception {
        Path dupDir = Files.createDirectory(dir.resolve("dup-plugins"));
        Path dup = PluginJars.build("dup", dupDir.resolve("dup.jar"), null);
        String both = "provided by both org.jvhost.device.loopback.LoopbackProvider from " + LOOPBACK_ORIGIN
                + " and com.example.dup.DupProvider from " + dup;
        Result list = run("devices", "--plugins", dupDir.toString());
        assertEquals(0, list.code, list.toString());
        assertLine(list.err, "error: refused device type 'loopback': " + both);
        assertFalse(list.out.contains("loopback -"), list.out);
        Result serve = run("serve", "--plugins", dupDir.toString(), "--device", "loopback:socket=" + dir.resolve("x.sock"));
        assertEquals(2, serve.code, serve.toString());
        assertTrue(serve.err.contains("device type 'loopback' is provided by both"), serve.toString());
    }

    @Test
    void theDefaultPluginsDirectoryIsTheOneNextToTheJarAndAMissingExplicitOneIsAUsageError() throws Exception {
        Path app = Files.createDirectory(dir.resolve("app"));
        Path jar = Files.copy(jvhostJar, app.resolve("jvhost.jar"));
        Files.createDirectory(app.resolve("plugins"));
        Files.copy(plugins.resolve("echo.jar"), app.resolve("plugins/echo.jar"));
        Result r = run(jar, "devices");
        assertEquals(0, r.code, r.toString());
        assertTrue(r.out.contains("    origin   " + app.resolve("plugins/echo.jar") + "\n"), r.toString());
        assertEquals("", r.err, "no problems");

        Path missing = dir.resolve("nowhere");
        Result bad = run("devices", "--plugins", missing.toString());
        assertEquals(2, bad.code, bad.toString());
        assertTrue(bad.err.contains("--plugins " + missing + ": no such directory"), bad.toString());
    }

    @Test
    void aPluginErrorAtStartEndsServeWithANonZeroStatusNamingThePluginAndLeavesNoSocket() throws Exception {
        Path errorsDir = Files.createDirectory(dir.resolve("errors-plugins"));
        Path errors = PluginJars.build("errors", errorsDir.resolve("errors.jar"), null);
        Path good = dir.resolve("good.sock");
        Result asserting = run("serve", "--plugins", errorsDir.toString(), "--device", "loopback:socket=" + good,
                "--device", "asserting:socket=" + dir.resolve("bad.sock"));
        assertEquals(2, asserting.code, "systemd's Restart=on-failure needs a failure status: " + asserting);
        assertLine(asserting.err, "com.example.errors.AssertingProvider from " + errors + ": create() failed: "
                + "java.lang.AssertionError: asserting plugin: unreachable state in create");
        Result nothing = run("serve", "--plugins", errorsDir.toString(), "--device", "loopback:socket=" + good,
                "--device", "null-device:socket=" + dir.resolve("bad.sock"));
        assertEquals(2, nothing.code, nothing.toString());
        assertLine(nothing.err, "com.example.errors.NullProvider from " + errors + ": create() returned null");
        assertFalse(Files.exists(good), "no device was served");
        Result devices = run("devices", "--plugins", errorsDir.toString());
        assertEquals(0, devices.code, devices.toString());
        assertLine(devices.err, "error: " + errors + ": refused com.example.errors.RecursiveTypeProvider: "
                + "java.lang.StackOverflowError");
        assertTrue(devices.out.contains("asserting - "), devices.toString());
    }

    /**
     * A plugin compiled against SPI 1.1 (the 1.1 SPI sources, taken from git history, compiled at test
     * time) loads in this host and serves: the scripted front-end's buffer comes back reversed.
     */
    @Test
    void aPluginBuiltAgainstSpi11LoadsAndServesUnchanged() throws Exception {
        Path oldDir = Files.createDirectory(dir.resolve("spi11-plugins"));
        Path jar = PluginJars.buildAgainstOldSpi("spi-1.1", "reverse11", oldDir.resolve("reverse11.jar"));
        Result list = run("devices", "--plugins", oldDir.toString());
        assertEquals(0, list.code, list.toString());
        assertTrue(list.out.contains("reverse11 - test plugin built against SPI 1.1\n    origin   " + jar + "\n"),
                list.toString());
        Path sock = dir.resolve("reverse11.sock");
        Process serve = start("serve", "--plugins", oldDir.toString(), "--device", "reverse11:socket=" + sock);
        awaitLog(serve, "serving 1 device(s)");
        try (ScriptedFrontend fe = ScriptedFrontend.connect(sock)) {
            MockSplitQueue driver = startQueue0(fe, 8);
            int head = driver.addChain(new byte[][] {"jvhost".getBytes(StandardCharsets.US_ASCII)}, new int[] {16});
            fe.kick(0);
            assertTrue(fe.waitCall(0, WAIT_MS), "the 1.1 device used the buffer and the host signalled it");
            MockSplitQueue.UsedElement used = driver.pollUsed();
            assertEquals(head, used.id());
            assertEquals("tsohvj", new String(driver.writtenBytes(used), StandardCharsets.US_ASCII));
        }
        serve.destroy();
        assertTrue(serve.waitFor(WAIT_MS, TimeUnit.MILLISECONDS), "jvhost stops on SIGTERM");
        assertEquals(0, serve.exitValue(), read(serve, "err"));
    }

    // ---- the front-end side -------------------------------------------------------------------------

    /** Features, protocol features with CONFIG, then GET_CONFIG of {@code size} bytes at offset 0. */
    private static byte[] negotiateAndReadConfig(ScriptedFrontend fe, long deviceFeatures, int size) throws IOException {
        fe.setOwner();
        long features = fe.getFeatures();
        assertEquals(deviceFeatures, features & deviceFeatures, () -> "features 0x" + Long.toHexString(features));
        fe.setFeatures(features);
        long proto = fe.getProtocolFeatures();
        assertTrue((proto & ProtocolFeatures.CONFIG) != 0, "a device with a config space offers CONFIG");
        fe.setProtocolFeatures(ProtocolFeatures.REPLY_ACK | ProtocolFeatures.CONFIG);
        ScriptedFrontend.Reply reply = fe.call(FrontendRequest.GET_CONFIG, ConfigLayout.of(0, 0, new byte[size]));
        assertEquals(size, ConfigLayout.size(reply.payload()));
        return ConfigLayout.bytes(reply.payload());
    }

    /** Starts queue 0 of the crash device with a buffer on it: its handleKick throws. */
    private static void crashTheCrashDevice(Path socket) throws IOException {
        try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
            MockSplitQueue driver = startQueue0(fe, 8);
            driver.addChain(new byte[][] {"boom".getBytes(StandardCharsets.US_ASCII)}, new int[0]);
            fe.kick(0);
            assertFalse(fe.waitCall(0, 500), "the crashed device used no buffer");
        }
    }

    /** Negotiates, shares 1 MiB of memory and starts and enables queue 0 with {@code size} entries. */
    private static MockSplitQueue startQueue0(ScriptedFrontend fe, int size) throws IOException {
        long ram = 1 << 20;
        fe.setOwner();
        fe.setFeatures(fe.getFeatures());
        fe.setProtocolFeatures(ProtocolFeatures.REPLY_ACK | ProtocolFeatures.MQ);
        ScriptedFrontend.GuestRegion region = fe.addRegion(0, ram);
        fe.setMemTable();
        FakeGuestMemory view = FakeGuestMemory.builder().region(0, region.buffer()).build();
        MockSplitQueue driver = MockSplitQueue.create(view, size, 0x1000, ram - 0x1000);
        fe.setVringNum(0, size);
        fe.setVringBase(0, 0);
        fe.setVringAddrGpa(0, driver.descGpa(), driver.availGpa(), driver.usedGpa());
        fe.setVringCall(0);
        fe.setVringKick(0);
        fe.setVringEnable(0, true);
        return driver;
    }

    // ---- processes -----------------------------------------------------------------------------------

    private record Result(int code, String out, String err) {
        @Override
        public String toString() {
            return "exit " + code + "\n--- stdout\n" + out + "--- stderr\n" + err;
        }
    }

    private Result run(String... args) throws Exception {
        return run(jvhostJar, args);
    }

    private Result run(Path jar, String... args) throws Exception {
        Process p = start(jar, args);
        if (!p.waitFor(WAIT_MS, TimeUnit.MILLISECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("jvhost " + Arrays.toString(args) + " did not finish in " + WAIT_MS + " ms");
        }
        return new Result(p.exitValue(), read(p, "out"), read(p, "err"));
    }

    private Process start(String... args) throws IOException {
        return start(jvhostJar, args);
    }

    /**
     * {@code java -jar JAR ARGS} with stdout and stderr in files (a full pipe would block it) and its
     * own temporary directory, where it must leave no extracted plugin behind.
     */
    private Process start(Path jar, String... args) throws IOException {
        int n = started.size();
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Djava.io.tmpdir=" + tmp(), "-jar", jar.toString()));
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command)
                .redirectOutput(dir.resolve("jvhost-" + n + ".out").toFile())
                .redirectError(dir.resolve("jvhost-" + n + ".err").toFile())
                .start();
        started.add(p);
        return p;
    }

    private Path tmp() throws IOException {
        return Files.createDirectories(dir.resolve("tmp"));
    }

    private String read(Process p, String stream) throws IOException {
        return Files.readString(dir.resolve("jvhost-" + started.indexOf(p) + "." + stream));
    }

    /** Waits until one stderr line of {@code p} contains all {@code parts}. */
    private void awaitLog(Process p, String... parts) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(WAIT_MS);
        while (System.nanoTime() < deadline) {
            if (hasLine(read(p, "err"), parts)) {
                return;
            }
            if (!p.isAlive()) {
                throw new AssertionError("jvhost exited with " + p.exitValue() + ":\n" + read(p, "err"));
            }
            Thread.sleep(50);
        }
        throw new AssertionError("no log line with " + Arrays.toString(parts) + " in:\n" + read(p, "err"));
    }

    private static void assertLine(String text, String... parts) {
        assertTrue(hasLine(text, parts), () -> "no line with " + Arrays.toString(parts) + " in:\n" + text);
    }

    private static boolean hasLine(String text, String... parts) {
        return text.lines().anyMatch(line -> Arrays.stream(parts).allMatch(line::contains));
    }

    private void assertNoExtractedPluginsLeft() throws IOException {
        try (Stream<Path> left = Files.list(tmp())) {
            assertEquals(List.of(), left.filter(f -> f.getFileName().toString().startsWith("jvhost-plugins-")).toList(),
                    "the copies of the built-in plugin jars are deleted on exit");
        }
    }
}
