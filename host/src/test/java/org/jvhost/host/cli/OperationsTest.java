package org.jvhost.host.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.jvhost.host.config.ConfigException;
import org.jvhost.host.config.ConfigFile;
import org.jvhost.host.control.ControlServer;
import org.jvhost.host.control.Json;
import org.jvhost.host.devices.DeviceHost;
import org.jvhost.host.devices.DeviceManager;
import org.jvhost.host.devices.PlannedDevice;
import org.jvhost.host.metrics.MetricsServer;
import org.jvhost.host.plugin.BuiltInPlugins;
import org.jvhost.host.plugin.DeviceTypeLoader;
import org.jvhost.host.plugin.DeviceTypes;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * A real engine host with loopback devices, managed through the config file, the control socket and
 * {@code jvhost ctl}: reloads apply only the difference, devices come and go at run time, and the
 * counters reach the control API and the metrics endpoint.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class OperationsTest {

    @TempDir
    Path dir;
    private Path file;
    private DeviceHost host;
    private DeviceManager manager;
    private ControlServer control;
    private final DeviceTypes types = new DeviceTypeLoader(getClass().getClassLoader(), BuiltInPlugins.none(), null)
            .load(null);

    @BeforeEach
    void start() throws Exception {
        file = dir.resolve("jvhost.conf");
        write(device("a", "a.sock", ""), device("b", "b.sock", ""));
        ConfigFile.Parsed parsed = ConfigFile.read(file);
        host = DeviceHost.engine(2, new org.jvhost.engine.event.Polling(0, 0), org.jvhost.engine.memory.MemoryBudget.defaults());
        manager = new DeviceManager(host, types, file, parsed.host());
        manager.start(PlannedDevice.plan(parsed.devices(), List.of(), types, parsed.problems()));
        control = ControlServer.start(dir.resolve("control.sock"), new ControlRequests(manager));
    }

    @AfterEach
    void stop() {
        control.close();
        host.close();
    }

    private static String device(String name, String socket, String extra) {
        return "[device " + name + "]\ntype = loopback\nsocket = " + socket + "\n" + extra;
    }

    private void write(String... sections) throws Exception {
        Files.writeString(file, String.join("\n", sections));
    }

    /** A front-end that negotiated features: a live connection a restart would break. */
    private ScriptedFrontend connect(String socket) throws Exception {
        ScriptedFrontend fe = ScriptedFrontend.connect(dir.resolve(socket));
        fe.setOwner();
        fe.setFeatures(fe.getFeatures());
        return fe;
    }

    @Test
    void reloadKeepsUnchangedDevicesConnectedAndAppliesTheRest() throws Exception {
        try (ScriptedFrontend fe = connect("a.sock"); ScriptedFrontend feB = connect("b.sock")) {
            awaitConnected("a");
            write(device("a", "a.sock", ""), device("c", "c.sock", "queues = 2\n"));
            DeviceManager.ReloadResult r = manager.reload();
            assertEquals(List.of("c"), r.added());
            assertEquals(List.of("b"), r.removed());
            assertEquals(List.of("a"), r.unchanged());
            assertEquals(List.of(), r.restarted());
            assertTrue(feB.isClosedByPeer(3000), "a removed device's front-end is disconnected");
            assertFalse(Files.exists(dir.resolve("b.sock")), "a removed device's socket file is gone");
            assertTrue(Files.exists(dir.resolve("c.sock")));
            assertFalse(fe.isClosedByPeer(200), "the unchanged device's connection survives");
            assertNotEquals(0, fe.getFeatures(), "and still answers");
            assertEquals(1, manager.view("a").snapshot().sessions(), "no reconnection happened");

            // a bad file changes nothing
            write(device("a", "a.sock", "speed = 1\n"), device("d", "d.sock", ""));
            ConfigException e = assertThrows(ConfigException.class, manager::reload);
            assertTrue(e.getMessage().contains(file + ":4: device a: key speed"), e.getMessage());
            assertFalse(Files.exists(dir.resolve("d.sock")));
            assertEquals(List.of("a", "c"), names());
            assertFalse(fe.isClosedByPeer(200));

            // a changed device restarts: its front-end must reconnect
            write(device("a", "a.sock", "queues = 2\n"), device("c", "c.sock", "queues = 2\n"));
            r = manager.reload();
            assertEquals(List.of("a"), r.restarted());
            assertEquals(List.of("c"), r.unchanged());
            assertTrue(fe.isClosedByPeer(3000));
            assertEquals(4, manager.view("a").snapshot().queues().size());
        }
    }

    @Test
    void ctlAddsListsCountsAndRemovesDevices() throws Exception {
        Path socket = dir.resolve("x.sock");
        assertEquals(0, ctl("add", "loopback:socket=" + socket + ",queues=2"), err.toString());
        assertEquals("added loopback@" + socket + "\n", out.toString());
        assertTrue(Files.exists(socket));
        try (ScriptedFrontend fe = connect("x.sock")) {
            awaitConnected("loopback@" + socket);
            assertEquals(0, ctl("list"));
            String listing = out.toString();
            assertTrue(listing.matches("(?s)NAME .*\na +loopback +config +listening .*"), listing);
            assertTrue(listing.matches("(?s).*\nloopback@" + socket + " +loopback +control +connected +0x[0-9a-f]+ +0/4 .*"),
                    listing);

            assertEquals(0, ctl("--json", "counters", "loopback@" + socket));
            Map<?, ?> response = (Map<?, ?>) Json.parse(out.toString().strip());
            Map<?, ?> device = (Map<?, ?>) ((List<?>) response.get("devices")).get(0);
            assertEquals(0L, ((Map<?, ?>) device.get("counters")).get("tx_frames"));
            assertEquals(4, ((List<?>) device.get("queues")).size());

            assertEquals(1, ctl("add", "loopback:socket=" + dir.resolve("a.sock")));
            assertTrue(err.toString().contains("is already used by device a (config file)"), err.toString());
            assertEquals(1, ctl("add", "loopback:socket=" + dir.resolve("y.sock") + ",queues=9"));
            assertTrue(err.toString().contains("queues=9: must be between 1 and 8"), err.toString());
            assertEquals(1, ctl("remove", "nope"));
            assertTrue(err.toString().contains("no device named 'nope'"), err.toString());

            assertEquals(0, ctl("remove", "loopback@" + socket));
            assertTrue(fe.isClosedByPeer(3000));
            assertFalse(Files.exists(socket));
        }
        assertEquals(List.of("a", "b"), names());
        // a reload leaves devices added through the control API alone, and re-adds a removed file device
        assertEquals(0, ctl("add", "loopback:socket=" + dir.resolve("z.sock")));
        assertEquals(0, ctl("remove", "b"));
        assertEquals(0, ctl("reload"), err.toString());
        assertEquals("added: b\nunchanged: a\n", out.toString());
        assertEquals(List.of("a", "loopback@" + dir.resolve("z.sock"), "b"), names());
        assertEquals(2, ctl("frobnicate"));
        assertEquals(2, ctl("remove"));
    }

    @Test
    void controlSocketIsOwnerOnlyAndIdleClientsHoldNoThread() throws Exception {
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(control.path())));
        int threadsBefore = Thread.activeCount();
        List<org.newsclub.net.unix.AFUNIXSocket> idle = new java.util.ArrayList<>();
        try {
            for (int i = 0; i < 40; i++) {
                idle.add(org.newsclub.net.unix.AFUNIXSocket.connectTo(
                        org.newsclub.net.unix.AFUNIXSocketAddress.of(control.path())));
            }
            assertEquals(0, ctl("list"), "served while 40 clients sit idle");
            assertTrue(Thread.activeCount() <= threadsBefore + 2, "threads " + threadsBefore + " -> " + Thread.activeCount());
        } finally {
            for (var s : idle) {
                s.close();
            }
        }
    }

    @Test
    void metricsEndpointServesTheCountersWithTheirOwnNamesAndTheProcessAndJvmMetrics() throws Exception {
        try (ScriptedFrontend fe = connect("a.sock");
             MetricsServer metrics = MetricsServer.start(MetricsServer.loopbackAddress("127.0.0.1:0"),
                     ServeServices.metrics(manager))) {
            awaitConnected("a");
            HttpClient http = HttpClient.newHttpClient();
            URI uri = URI.create("http://127.0.0.1:" + metrics.address().getPort() + "/metrics");
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(uri).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode());
            assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/plain; version=0.0.4"));
            String body = r.body();
            assertTrue(body.contains("# TYPE jvhost_queue_kicks_total counter\n"), body);
            assertTrue(body.contains("jvhost_device_info{device=\"a\",type=\"loopback\"} 1\n"), body);
            assertTrue(body.contains("jvhost_device_connected{device=\"a\"} 1.0\n"), body);
            assertTrue(body.contains("jvhost_device_connected{device=\"b\"} 0.0\n"), body);
            assertTrue(body.contains("jvhost_queue_kicks_total{device=\"a\",queue=\"1\"} 0.0\n"), body);
            assertTrue(body.contains("jvhost_device_frames_total{device=\"a\",direction=\"tx\"} 0.0\n"), body);
            assertTrue(body.contains("jvhost_queue_drops_total{device=\"a\",direction=\"rx\",queue=\"0\",reason=\"no_buffer\"} 0.0\n"),
                    body);
            assertTrue(body.contains("\njvhost_build_info{"), body);
            for (String family : List.of("process_resident_memory_bytes", "process_open_fds", "jvm_threads_current",
                    "jvm_gc_collection_seconds")) {
                assertTrue(body.contains("# TYPE " + family + " "), family + " in\n" + body);
            }
            assertFalse(body.contains("counter=\""), "no metric names in labels:\n" + body);

            HttpResponse<String> open = http.send(HttpRequest.newBuilder(uri)
                    .header("Accept", "application/openmetrics-text; version=1.0.0").build(),
                    HttpResponse.BodyHandlers.ofString());
            assertTrue(open.headers().firstValue("Content-Type").orElse("").startsWith("application/openmetrics-text"),
                    open.headers().map().toString());
            assertTrue(open.body().endsWith("# EOF\n"), open.body());
            HttpResponse<String> post = http.send(HttpRequest.newBuilder(uri).POST(HttpRequest.BodyPublishers.noBody()).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(405, post.statusCode());
        }
        assertThrows(IllegalArgumentException.class, () -> MetricsServer.loopbackAddress("192.0.2.1:9109"));
    }

    @Test
    void ctlNeedsNoFlagWithTheEnvironmentVariableAndDefaultsToRunJvhost() {
        assertEquals(0, ctlIn(Map.of(DefaultControl.ENV, control.path().toString()), "list"), err.toString());
        assertTrue(out.toString().startsWith("NAME "), out.toString());
        assertEquals(1, ctlIn(Map.of(), "list"));
        assertTrue(err.toString().contains("/run/jvhost/control.sock"), err.toString());
    }

    @Test
    void ctlTopShowsRatesPerDeviceAndQueue() {
        assertEquals(0, ctl("top", "--count", "2", "--interval", "0.1"), err.toString());
        String screens = out.toString();
        assertEquals(2, screens.split("DEVICE / QUEUE", -1).length - 1, screens);
        assertTrue(screens.contains("\na ") && screens.contains("\n  a queue 1 ") && screens.contains("\nb "), screens);
        assertEquals(0, ctl("top", "a", "--count", "1", "--interval", "0.1"), err.toString());
        assertFalse(out.toString().contains("\nb "), out.toString());
        assertEquals(1, ctl("top", "nosuch", "--count", "1", "--interval", "0.1"));
    }

    @Test
    void theLightCtlPathAnswersLikeTheFullCommandTree() {
        CommandLine cli = Main.ctlOnly();
        cli.setOut(new PrintWriter(out));
        cli.setErr(new PrintWriter(err));
        assertEquals(0, cli.execute("ctl", "--control", control.path().toString(), "list"), err.toString());
        assertTrue(out.toString().startsWith("NAME "), out.toString());
        assertEquals(1, cli.execute("ctl", "--control", dir.resolve("none.sock").toString(), "list"));
        assertEquals("jvhost ctl: " + dir.resolve("none.sock") + ": cannot connect: no such socket (is jvhost "
                + "serve running with this --control?)\n", err.toString());
        assertEquals(2, cli.execute("ctl", "--control", control.path().toString(), "frobnicate"));
    }

    @Test
    void theControlApiRefusesARelativeSocketPath() {
        Map<?, ?> r = (Map<?, ?>) Json.parse(new ControlRequests(manager).handle("add loopback:socket=rel.sock"));
        assertEquals(false, r.get("ok"), r.toString());
        assertTrue(String.valueOf(r.get("error")).contains("rel.sock is a relative path; give an absolute one"),
                r.toString());
        assertFalse(Files.exists(Path.of("rel.sock").toAbsolutePath()));
    }

    @Test
    void sighupWarnsAboutHostChangesLikeCtlReload() throws Exception {
        write("[host]\nworkers = 3\n", device("a", "a.sock", ""), device("b", "b.sock", ""));
        java.io.ByteArrayOutputStream captured = new java.io.ByteArrayOutputStream();
        java.io.PrintStream stderr = System.err;
        System.setErr(new java.io.PrintStream(captured, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            ServeCommand.reloadOnSignal(manager);
        } finally {
            System.setErr(stderr);
        }
        String log = captured.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(log.contains("WARN") && log.contains(file + ": [host] changed; workers, control and metrics take "
                + "effect at the next start"), log);
    }

    /** What a scrape in the Prometheus text format shows of {@code manager}'s devices. */
    static String metricsText(DeviceManager manager) throws java.io.IOException {
        return new String(ServeServices.metrics(manager).render(null).bytes(), java.nio.charset.StandardCharsets.UTF_8);
    }

    private List<String> names() {
        return manager.list().stream().map(v -> v.entry().name()).toList();
    }

    private void awaitConnected(String name) throws InterruptedException {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (manager.view(name) == null || !manager.view(name).snapshot().connected()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError(name + " never saw its front-end");
            }
            Thread.sleep(10);
        }
    }

    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();

    private int ctl(String... args) {
        String[] full = new String[args.length + 2];
        full[0] = "--control";
        full[1] = control.path().toString();
        System.arraycopy(args, 0, full, 2, args.length);
        return ctlIn(Map.of(), full);
    }

    /** {@code jvhost ctl ARGS} in the environment {@code env}. */
    private int ctlIn(Map<String, String> env, String... args) {
        out.getBuffer().setLength(0);
        err.getBuffer().setLength(0);
        CommandLine cli = Isolated.cli(Main.commandLine(
                new DeviceTypeLoader(getClass().getClassLoader(), BuiltInPlugins.none(), null),
                (DeviceHost.Factory) (w, pollMicros, memory) -> {
                    throw new AssertionError("ctl creates no host");
                }, null), env);
        cli.setOut(new PrintWriter(out));
        cli.setErr(new PrintWriter(err));
        String[] full = new String[args.length + 1];
        full[0] = "ctl";
        System.arraycopy(args, 0, full, 1, args.length);
        return cli.execute(full);
    }
}
