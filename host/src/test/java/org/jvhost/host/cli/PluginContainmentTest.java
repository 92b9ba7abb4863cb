package org.jvhost.host.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.jvhost.host.config.ConfigFile;
import org.jvhost.host.config.DeviceEntry;
import org.jvhost.host.config.DeviceSpec;
import org.jvhost.host.control.ControlServer;
import org.jvhost.host.control.Json;
import org.jvhost.host.devices.DeviceHost;
import org.jvhost.host.devices.DeviceManager;
import org.jvhost.host.plugin.BuiltInPlugins;
import org.jvhost.host.plugin.DeviceTypeLoader;
import org.jvhost.host.plugin.DeviceTypes;
import org.jvhost.host.plugin.PluginJars;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;
import picocli.CommandLine;

/**
 * A plugin whose code throws {@link Error}s or breaks its contract (the test plugin {@code errors}:
 * {@code type()} overflows the stack, {@code asserting}'s {@code create()} throws an AssertionError,
 * {@code null-device}'s returns null, {@code bad-counters}' device throws from {@code counters()}) fails
 * alone, named by class and file, wherever the host calls it: {@code devices}, {@code serve} at start
 * (non-zero status, nothing served, no shutdown hook left to turn the exit into 0), {@code ctl add}
 * (refused; the control API goes on) and reading the devices' state (list, counters, metrics).
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class PluginContainmentTest {

    @TempDir
    static Path plugins;
    static Path errorsJar;

    @TempDir
    Path dir;
    private final RecordingHost host = new RecordingHost();
    private final RecordingLifecycle lifecycle = new RecordingLifecycle();
    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();

    @BeforeAll
    static void buildPlugins() throws IOException {
        PluginJars.build("echo", plugins.resolve("echo.jar"), null);
        errorsJar = PluginJars.build("errors", plugins.resolve("errors.jar"), null);
    }

    private DeviceTypeLoader loader() {
        return new DeviceTypeLoader(getClass().getClassLoader(), BuiltInPlugins.none(), null);
    }

    private int run(String... args) {
        CommandLine cli = Isolated.cli(Main.commandLine(loader(), (workers, pollMicros, memory) -> host, lifecycle), Map.of());
        cli.setOut(new PrintWriter(out));
        cli.setErr(new PrintWriter(err));
        return cli.execute(args);
    }

    /** One control request; fails after 5 s without an answer (ControlClient waits 120 s). */
    private static String request(Path socket, String line) throws IOException {
        try (AFUNIXSocket s = AFUNIXSocket.connectTo(AFUNIXSocketAddress.of(socket))) {
            s.setSoTimeout(5000);
            s.getOutputStream().write((line + "\n").getBytes(StandardCharsets.UTF_8));
            return new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8)).readLine();
        } catch (SocketTimeoutException e) {
            throw new AssertionError("no answer to '" + line + "' within 5 s: the control API is dead", e);
        }
    }

    private static String source(String simpleName) {
        return "com.example.errors." + simpleName + " from " + errorsJar;
    }

    @Test
    void devicesListsTheOtherTypesAndNamesTheProviderWhoseTypeOverflowsTheStack() {
        assertEquals(0, run("devices", "--plugins", plugins.toString()), err.toString());
        assertTrue(out.toString().contains("echo - "), out.toString());
        assertTrue(out.toString().contains("asserting - create() throws an AssertionError"), out.toString());
        assertTrue(err.toString().contains("error: " + errorsJar + ": refused com.example.errors.RecursiveTypeProvider: "
                + "java.lang.StackOverflowError"), err.toString());
    }

    @Test
    void aCreateThatThrowsAnErrorAtStartExitsNonZeroNamingThePluginAndServesNothing() {
        int code = run("serve", "--plugins", plugins.toString(), "--device", "loopback:socket=/tmp/jvhost-a.sock",
                "--device", "asserting:socket=/tmp/jvhost-b.sock");
        assertEquals(2, code, err.toString());
        assertTrue(err.toString().contains(source("AssertingProvider") + ": create() failed: java.lang.AssertionError: "
                + "asserting plugin: unreachable state in create"), err.toString());
        assertEquals(List.of(), host.devices, "nothing is served");
        assertTrue(host.closed);
        assertFalse(lifecycle.hookInstalled, "a shutdown hook left installed makes the process exit with status 0");
    }

    @Test
    void aCreateThatReturnsNullIsAProblemBeforeAnyDeviceListens() {
        int code = run("serve", "--plugins", plugins.toString(), "--device", "loopback:socket=/tmp/jvhost-a.sock",
                "--device", "null-device:socket=/tmp/jvhost-b.sock");
        assertEquals(2, code, err.toString());
        assertTrue(err.toString().contains(source("NullProvider") + ": create() returned null instead of a device"),
                err.toString());
        assertEquals(List.of(), host.devices, "nothing is served");
        assertFalse(lifecycle.hookInstalled);
    }

    @Test
    void ctlAddOfABrokenPluginTypeIsRefusedAndTheControlApiGoesOn() throws Exception {
        DeviceTypes types = loader().load(plugins);
        DeviceManager manager = new DeviceManager(host, types, null, ConfigFile.Settings.NONE);
        Path socket = dir.resolve("control.sock");
        try (ControlServer control = ControlServer.start(socket, new ControlRequests(manager))) {
            Map<?, ?> asserting = (Map<?, ?>) Json.parse(request(socket, "add asserting:socket=/tmp/jvhost-x.sock"));
            assertEquals(false, asserting.get("ok"), asserting.toString());
            assertTrue(asserting.get("error").toString().contains(source("AssertingProvider") + ": create() failed: "
                    + "java.lang.AssertionError"), asserting.toString());
            Map<?, ?> nothing = (Map<?, ?>) Json.parse(request(socket, "add null-device:socket=/tmp/jvhost-y.sock"));
            assertEquals(false, nothing.get("ok"), nothing.toString());
            assertTrue(nothing.get("error").toString().contains("create() returned null"), nothing.toString());
            Map<?, ?> added = (Map<?, ?>) Json.parse(request(socket, "add echo:socket=/tmp/jvhost-z.sock"));
            assertEquals(true, added.get("ok"), added.toString());
            assertEquals(1, host.devices.size());
        }
    }

    @Test
    void aDeviceWhoseCountersThrowAnErrorIsListedWithoutThemAndTheOthersAreShown() throws Exception {
        DeviceHost engine = DeviceHost.engine(1, new org.jvhost.engine.event.Polling(0, 0), org.jvhost.engine.memory.MemoryBudget.defaults());
        try {
            DeviceManager manager = new DeviceManager(engine, loader().load(plugins), null, ConfigFile.Settings.NONE);
            for (String spec : List.of("bad-counters:socket=" + dir.resolve("bad.sock"), "echo:socket=" + dir.resolve("echo.sock"))) {
                manager.add(DeviceEntry.of(DeviceSpec.parse(spec), DeviceEntry.Origin.CONTROL));
            }
            String bad = "bad-counters@" + dir.resolve("bad.sock");
            String echo = "echo@" + dir.resolve("echo.sock");
            assertEquals(List.of(bad, echo), manager.list().stream().map(v -> v.entry().name()).toList());
            assertEquals(Map.of(), manager.list().get(0).snapshot().counters(), "the broken counters are left out");
            assertTrue(OperationsTest.metricsText(manager).contains("jvhost_device_connected{device=\"" + echo + "\""),
                    OperationsTest.metricsText(manager));
            Map<?, ?> list = (Map<?, ?>) Json.parse(new ControlRequests(manager).handle("list"));
            assertEquals(true, list.get("ok"), list.toString());
        } finally {
            engine.close();
        }
    }
}
