package org.jvhost.host.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.jvhost.host.control.ControlClient;
import org.jvhost.host.control.Json;
import org.jvhost.host.it.TestpmdFrontEnd.PortStats;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Operating a running jvhost: {@code serve --config} with the control socket and the metrics endpoint,
 * one device carrying testpmd traffic while others are added and removed through {@code jvhost ctl},
 * a {@code ctl reload} and a SIGHUP reload. The traffic device must never notice: its connection
 * stays (one session), its counters keep rising, no queue counts an error, testpmd sees no errors.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class OperationsIT {

    private static final long MIN_FRAMES = 10_000;

    @RegisterExtension
    final PeerScope scope = new PeerScope();
    private Path sockets;
    private Path logs;
    private Path config;
    private Path control;
    private int metricsPort;
    private ProcessUnderTest jvhost;
    private TestpmdFrontEnd front;
    private final List<ProcessUnderTest> ctls = new ArrayList<>();

    @BeforeEach
    void setUp() throws Exception {
        Peers.assumeInstalled(Peers.TESTPMD, "dpdk-dev");
        Peers.assumeInstalled(Peers.TASKSET, "util-linux");
        sockets = scope.sockets();
        logs = scope.logs();
        config = sockets.resolve("jvhost.conf");
        control = sockets.resolve("control.sock");
        try (ServerSocket probe = new ServerSocket(0)) {
            metricsPort = probe.getLocalPort();
        }
    }

    private void writeConfig(String... extraDevices) throws Exception {
        StringBuilder s = new StringBuilder("[host]\ncontrol = control.sock\nmetrics = 127.0.0.1:" + metricsPort + "\n\n"
                + "[device traffic]\ntype = loopback\nsocket = traffic.sock\n");
        for (String d : extraDevices) {
            s.append("\n[device ").append(d).append("]\ntype = loopback\nsocket = ").append(d).append(".sock\n");
        }
        Files.writeString(config, s);
    }

    @Test
    void devicesComeAndGoWhileAnotherCarriesTraffic() throws Exception {
        writeConfig();
        jvhost = scope.track(ProcessUnderTest.start("jvhost",
                Serve.command(Serve.ON_BACK_END_CPU, List.of("--config", config.toString())), logs));
        Peers.awaitNewFile(control, null, Duration.ofSeconds(30), jvhost);
        Path traffic = sockets.resolve("traffic.sock");
        front = scope.track(TestpmdFrontEnd.start("testpmd", traffic, 1, "io", false, logs));
        front.command("start tx_first 4");
        Peers.sleep(Duration.ofSeconds(1));
        Map<?, ?> before = trafficCounters();
        PortStats first = front.portStats();

        // add through ctl; a scripted front-end connects to it
        Path extra = sockets.resolve("extra.sock");
        assertEquals(0, ctl("add", "loopback:socket=" + extra + ",queues=2"));
        assertTrue(Files.exists(extra));
        try (ScriptedFrontend fe = ScriptedFrontend.connect(extra)) {
            fe.setOwner();
            fe.setFeatures(fe.getFeatures());
            assertTrue(ctlOutput("list").matches("(?s).*\nloopback@" + Pattern.quote(extra.toString())
                    + " +loopback +control +connected .*"), lastCtl());

            // reload through ctl: a device new in the file starts, the traffic device is unchanged
            writeConfig("filed");
            String reload = ctlOutput("reload");
            assertTrue(reload.contains("added: filed") && reload.contains("unchanged: traffic"), reload);
            assertTrue(Files.exists(sockets.resolve("filed.sock")));

            // remove the ctl-added device: its front-end is disconnected and its socket file removed
            assertEquals(0, ctl("remove", "loopback@" + extra));
            assertTrue(fe.isClosedByPeer(5000));
            assertFalse(Files.exists(extra));
        }

        // SIGHUP: the file without "filed" removes it
        writeConfig();
        int mark = jvhost.mark();
        Process hup = new ProcessBuilder("kill", "-HUP", String.valueOf(jvhost.pid())).start();
        assertEquals(0, hup.waitFor());
        jvhost.await(Pattern.compile("reloaded .*removed \\[filed\\]"), mark, Duration.ofSeconds(30));
        assertFalse(Files.exists(sockets.resolve("filed.sock")));

        // a bad file changes nothing
        Files.writeString(config, Files.readString(config) + "speed = 10G\n");
        assertEquals(1, ctl("reload"));
        assertTrue(lastCtl().contains(config + ":8: device traffic: key speed"), lastCtl());

        PortStats second = front.portStats();
        Map<?, ?> after = trafficCounters();
        front.stop();

        long tx = second.txPackets() - first.txPackets();
        long rx = second.rxPackets() - first.rxPackets();
        assertTrue(tx >= MIN_FRAMES && rx >= MIN_FRAMES, "traffic stalled: tx " + tx + " rx " + rx + jvhost.tail());
        assertEquals(0, second.rxErrors() + second.txErrors() + second.rxNoMbuf(), "testpmd errors: " + second);
        long framesBefore = counter(before, "tx_frames");
        long framesAfter = counter(after, "tx_frames");
        assertTrue(framesAfter - framesBefore >= MIN_FRAMES, "jvhost's tx_frames " + framesBefore + " -> " + framesAfter);
        assertTrue(queue(after, 1, "kicks") > queue(before, 1, "kicks"), "kicks on TX queue 1 keep counting");
        for (Object q : (List<?>) after.get("queues")) {
            assertEquals(0L, ((Map<?, ?>) q).get("errors"), "queue errors: " + q);
        }
        assertEquals(0L, after.get("errors"));
        Map<?, ?> listed = device(Json.parse(ControlClient.request(control, "list")), "traffic");
        assertEquals(1L, listed.get("sessions"), "the traffic device was never reconnected");
        assertEquals("connected", listed.get("state"));

        String metrics = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                URI.create("http://127.0.0.1:" + metricsPort + "/metrics")).build(),
                HttpResponse.BodyHandlers.ofString()).body();
        // the exposition writes a float: 1.230032E7 once a counter passes ten million
        Matcher m = Pattern.compile("jvhost_device_frames_total\\{device=\"traffic\",direction=\"tx\"} (\\S+)\n").matcher(metrics);
        assertTrue(m.find(), metrics);
        assertTrue(Double.parseDouble(m.group(1)) >= framesAfter, metrics);
        assertTrue(metrics.contains("jvhost_device_connected{device=\"traffic\"} 1.0\n"), metrics);
        assertTrue(jvhost.isAlive(), jvhost.tail());
    }

    private Map<?, ?> trafficCounters() throws Exception {
        return device(Json.parse(ControlClient.request(control, "counters traffic")), "traffic");
    }

    private static Map<?, ?> device(Object response, String name) {
        Map<?, ?> r = (Map<?, ?>) response;
        assertEquals(true, r.get("ok"), String.valueOf(r));
        for (Object d : (List<?>) r.get("devices")) {
            if (name.equals(((Map<?, ?>) d).get("name"))) {
                return (Map<?, ?>) d;
            }
        }
        throw new AssertionError("no device " + name + " in " + r);
    }

    private static long counter(Map<?, ?> device, String name) {
        return (Long) ((Map<?, ?>) device.get("counters")).get(name);
    }

    private static long queue(Map<?, ?> device, int index, String name) {
        return (Long) ((Map<?, ?>) ((List<?>) device.get("queues")).get(index)).get(name);
    }

    /** Runs {@code jvhost ctl --control SOCK args...} as its own process; returns its exit status. */
    private int ctl(String... args) {
        List<String> cmd = new ArrayList<>(List.of(Serve.java(), "-jar", Serve.jar().toString(), "ctl", "--control",
                control.toString()));
        cmd.addAll(List.of(args));
        ProcessUnderTest p = scope.track(ProcessUnderTest.start("ctl-" + ctls.size() + "-" + args[0], cmd, logs));
        ctls.add(p);
        return p.awaitExit(Duration.ofSeconds(60));
    }

    private String ctlOutput(String... args) {
        assertEquals(0, ctl(args), lastCtl());
        return lastCtl();
    }

    private String lastCtl() {
        return ctls.get(ctls.size() - 1).outputSince(0);
    }
}
