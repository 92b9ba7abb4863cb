package org.jvhost.host.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.jvhost.host.control.ControlServer;
import org.jvhost.host.devices.DeviceHost;
import org.jvhost.host.devices.DeviceManager;
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
 * The instrument keys of any device ({@code trace=PATH}, {@code strict=on}) and their control commands:
 * {@code ctl trace NAME on|off} and {@code ctl violations}, whose exit status a front-end's CI scripts.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class InstrumentControlTest {
    @TempDir
    Path dir;
    private DeviceHost host;
    private DeviceManager manager;
    private ControlServer control;
    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();
    private final DeviceTypes types = new DeviceTypeLoader(getClass().getClassLoader(), BuiltInPlugins.none(), null)
            .load(null);

    @BeforeEach
    void start() throws Exception {
        host = DeviceHost.engine(1, new org.jvhost.engine.event.Polling(0, 0), org.jvhost.engine.memory.MemoryBudget.defaults());
        manager = new DeviceManager(host, types, null, null);
        control = ControlServer.start(dir.resolve("control.sock"), new ControlRequests(manager));
    }

    @AfterEach
    void stop() {
        control.close();
        host.close();
    }

    @Test
    void traceAndStrictFromTheDeviceSpecAndTheControlSocket() throws Exception {
        Path socket = dir.resolve("lo.sock");
        Path trace = dir.resolve("lo.trace");
        String name = "loopback@" + socket;
        assertEquals(0, ctl("add", "loopback:socket=" + socket + ",trace=" + trace + ",trace-format=text,strict=on"),
                err.toString());
        assertEquals(0, ctl("violations", name), err.toString());
        try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
            fe.setFeatures(fe.getFeatures());
            assertEquals(0, ctl("trace", name, "off"), err.toString());
            assertEquals("trace off\n", out.toString());
            fe.setVringNum(0, 256);
            fe.setVringAddr(0, 0x1000, 0x3000, 0x2000); // before any memory table
            fe.getFeatures();
            assertEquals(0, ctl("trace", name, "on"), err.toString());
            fe.getFeatures();
        }
        List<String> lines = Files.readAllLines(trace);
        assertTrue(lines.get(0).contains(" <- GET_FEATURES "), lines.get(0));
        assertFalse(String.join("\n", lines).contains("SET_VRING_ADDR"), "traced while off:\n" + String.join("\n", lines));

        assertEquals(1, ctl("violations"), "a CI fails on a report");
        assertTrue(out.toString().contains(name + ": strict, violations=1\n  ring_before_mem_table=1"), out.toString());
        assertTrue(err.toString().contains("1 spec violation(s) reported by strict mode"), err.toString());
        assertEquals(0, ctl("--json", "counters", name));
        assertTrue(out.toString().contains("\"spec_violations\":1"), out.toString());
    }

    @Test
    void faultKeysReachTheDevice() throws Exception {
        Path socket = dir.resolve("f.sock");
        assertEquals(0, ctl("add", "loopback:socket=" + socket + ",fault-queues=1,fault-nack=set_vring_addr"),
                err.toString());
        try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
            fe.setFeatures(fe.getFeatures());
            fe.getProtocolFeatures();
            fe.setProtocolFeatures(org.jvhost.engine.protocol.ProtocolFeatures.MQ);
            assertEquals(1, fe.getQueueNum(), "a loopback device has 2 queues; fault-queues=1 says 1");
        }
        assertEquals(0, ctl("--json", "counters", "loopback@" + socket));
        assertTrue(out.toString().contains("\"faults_injected\":1"), out.toString());
    }

    @Test
    void badInstrumentKeysAndCommandsAreNamed() {
        assertEquals(1, ctl("add", "loopback:socket=" + dir.resolve("a.sock") + ",strict=maybe"));
        assertTrue(err.toString().contains("strict=maybe is not on or off"), err.toString());
        assertEquals(1, ctl("add", "loopback:socket=" + dir.resolve("b.sock") + ",trace-format=text"));
        assertTrue(err.toString().contains("trace-format and trace-max-bytes need trace=PATH"), err.toString());
        assertEquals(1, ctl("add", "loopback:socket=" + dir.resolve("d.sock") + ",fault-nack=GET_FEATURES"));
        assertTrue(err.toString().contains("fault-nack=GET_FEATURES names GET_FEATURES, whose reply is its answer"),
                err.toString());
        assertEquals(1, ctl("add", "loopback:socket=" + dir.resolve("e.sock") + ",fault-delay-ms=9000"));
        assertTrue(err.toString().contains("fault-delay-ms=9000 is not a number in 1..5000"), err.toString());
        assertEquals(0, ctl("add", "loopback:socket=" + dir.resolve("c.sock")));
        assertEquals(1, ctl("trace", "loopback@" + dir.resolve("c.sock"), "on"));
        assertTrue(err.toString().contains("has no trace file: give the device trace=PATH"), err.toString());
        assertEquals(1, ctl("trace", "nope", "on"));
        assertTrue(err.toString().contains("no device named 'nope'"), err.toString());
        assertEquals(2, ctl("trace", "nope"));
    }

    @Test
    void resizeReachesOnlyADeviceWithACapacity() throws Exception {
        String name = "loopback@" + dir.resolve("r.sock");
        assertEquals(0, ctl("add", "loopback:socket=" + dir.resolve("r.sock")));
        assertEquals(1, ctl("resize", name, "1G"));
        assertTrue(err.toString().contains(name + ": resize to 1073741824 bytes refused: this device has no capacity"),
                err.toString());
        assertEquals(1, ctl("resize", "nope", "512M"));
        assertTrue(err.toString().contains("no device named 'nope'"), err.toString());
        assertEquals(2, ctl("resize", name, "lots"));
        assertTrue(err.toString().contains("'lots' is not a size"), err.toString());
        assertEquals(2, ctl("resize", name));
    }

    private int ctl(String... args) {
        out.getBuffer().setLength(0);
        err.getBuffer().setLength(0);
        CommandLine cli = Main.commandLine(new DeviceTypeLoader(getClass().getClassLoader(), BuiltInPlugins.none(), null),
                (DeviceHost.Factory) (w, pollMicros, memory) -> {
                    throw new AssertionError("ctl creates no host");
                }, null);
        cli.setOut(new PrintWriter(out));
        cli.setErr(new PrintWriter(err));
        String[] full = new String[args.length + 3];
        full[0] = "ctl";
        full[1] = "--control";
        full[2] = control.path().toString();
        System.arraycopy(args, 0, full, 3, args.length);
        return cli.execute(full);
    }
}
