package org.jvhost.host.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.jvhost.engine.event.Polling;
import org.jvhost.engine.memory.MemoryBudget;
import org.jvhost.engine.server.DeviceSnapshot;
import org.jvhost.engine.server.Host;
import org.jvhost.engine.server.SocketAccess;
import org.jvhost.host.plugin.BuiltInPlugins;
import org.jvhost.host.plugin.DeviceTypeLoader;
import org.jvhost.host.plugin.PluginJars;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.virtio.VirtioNet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@code jvhost serve} and {@code jvhost devices} through picocli, with the real device types (the
 * loopback is on the test class path) and a recording host in place of the engine.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ServeCommandTest {

    private final RecordingHost host = new RecordingHost();
    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();
    private int hostsCreated;
    private int requestedWorkers;
    private int requestedPollMicros = -1;
    private Polling requestedPolling;
    private final RecordingLifecycle lifecycle = new RecordingLifecycle();
    private MemoryBudget requestedMemory;

    private int run(String... args) {
        DeviceTypeLoader types = new DeviceTypeLoader(getClass().getClassLoader(), BuiltInPlugins.none(), null);
        CommandLine cli = Isolated.cli(Main.commandLine(types, (workers, polling, memory) -> {
            hostsCreated++;
            requestedWorkers = workers;
            requestedPollMicros = polling.micros();
            requestedPolling = polling;
            requestedMemory = memory;
            return host;
        }, lifecycle), Map.of());
        cli.setOut(new PrintWriter(out));
        cli.setErr(new PrintWriter(err));
        return cli.execute(args);
    }

    @Test
    void servesEachDeviceOnItsSocketWithDefaultsFilledIn() {
        int code = run("serve", "--workers", "3",
                "--device", "loopback:socket=/tmp/jvhost-a.sock",
                "--device", "loopback:connect=/tmp/jvhost-b.sock,queues=2,mrg_rxbuf=off");
        assertEquals(0, code, err.toString());
        assertEquals(3, requestedWorkers);
        assertEquals(Polling.DEFAULT, requestedPolling, "default --poll-us and --poll-max-us");
        assertEquals(List.of("loopback@/tmp/jvhost-a.sock", "loopback@/tmp/jvhost-b.sock"), host.names);
        assertEquals(List.of(Path.of("/tmp/jvhost-a.sock"), Path.of("/tmp/jvhost-b.sock")), host.sockets);
        assertEquals(List.of(Host.Mode.LISTEN, Host.Mode.CONNECT), host.modes);
        VhostUserDevice first = host.devices.get(0);
        VhostUserDevice second = host.devices.get(1);
        assertEquals(2, first.maxQueues(), "default queues=1");
        assertTrue((first.features() & VirtioNet.F_MRG_RXBUF) != 0, "default mrg_rxbuf=on");
        assertEquals(4, second.maxQueues());
        assertEquals(0, second.features() & VirtioNet.F_MRG_RXBUF);
        assertTrue(lifecycle.awaited);
        assertTrue(host.closed, "the host is closed when serving ends");
    }

    @Test
    void sighupWithoutAConfigFileHasAHandlerThatChangesNothing() {
        assertEquals(0, run("serve", "--device", "loopback:socket=/tmp/jvhost-a.sock"), err.toString());
        assertNotNull(lifecycle.hangup, "no SIGHUP handler: the JVM's default would stop jvhost with status 0");
        host.closed = false;
        lifecycle.hangup.run();
        assertFalse(host.closed);
        assertEquals(1, host.devices.size());
    }

    @Test
    void unknownKeyExitsWithUsageErrorAndServesNothing() {
        int code = run("serve", "--device", "loopback:socket=/tmp/jvhost-a.sock,speed=10G");
        assertEquals(2, code);
        assertTrue(host.devices.isEmpty() && host.closed, "nothing is served");
        assertMessage("loopback:socket=/tmp/jvhost-a.sock,speed=10G", "has no option 'speed'", "speed=10G");
    }

    @Test
    void badValueExitsWithUsageErrorNamingDeviceKeyAndValueAndClosesTheHost() {
        int code = run("serve", "--device", "loopback:socket=/tmp/jvhost-a.sock,queues=99");
        assertEquals(2, code);
        assertMessage("loopback@/tmp/jvhost-a.sock", "queues=99", "between 1 and 8");
        assertTrue(host.closed);
        assertTrue(host.devices.isEmpty());
    }

    @Test
    void badMacIsAUsageError() {
        assertEquals(2, run("serve", "--device", "loopback:socket=/tmp/jvhost-a.sock,mac=01:00:5e:00:00:01"));
        assertMessage("mac=01:00:5e:00:00:01", "multicast");
    }

    @Test
    void aLaterBadDeviceStartsNoDeviceAtAll() {
        int code = run("serve", "--device", "loopback:socket=/tmp/jvhost-a.sock",
                "--device", "loopback:socket=/tmp/jvhost-b.sock,mrg_rxbuf=maybe");
        assertEquals(2, code);
        assertEquals(0, host.devices.size(), "every device is created before any is served");
        assertTrue(host.closed);
        assertMessage("loopback@/tmp/jvhost-b.sock", "mrg_rxbuf=maybe", "expected on or off");
    }

    @Test
    void unknownTypeListsKnownTypes() {
        assertEquals(2, run("serve", "--device", "tap:socket=/tmp/jvhost-a.sock"));
        assertMessage("unknown device type 'tap'", "known types: blk, loopback, net");
        assertTrue(host.devices.isEmpty() && host.closed, "nothing is served");
    }

    @Test
    void grammarErrorsAreUsageErrors() {
        assertEquals(2, run("serve", "--device", "loopback:queues=2"));
        assertMessage("missing socket=PATH");
        assertEquals(2, run("serve", "--device", "loopback:socket=/tmp/a,connect=/tmp/b"));
        assertMessage("not both");
        assertEquals(2, run("serve", "--device", "loopback"));
        assertMessage("expected TYPE:socket=PATH");
        assertEquals(0, hostsCreated);
    }

    @Test
    void socketKeysBecomeTheHostsSocketAccessAndNeverReachTheDevice() {
        assertEquals(0, run("serve", "--allow-uid", "7,8",
                "--device", "loopback:socket=/tmp/jvhost-a.sock,socket-mode=0660,socket-group=kvm,allow-uid=0:107",
                "--device", "loopback:socket=/tmp/jvhost-b.sock"), err.toString());
        assertEquals(new SocketAccess(0660, "kvm", Set.of(0, 107)), host.access.get(0));
        assertEquals(new SocketAccess(0600, null, Set.of(7, 8)), host.access.get(1));
    }

    @Test
    void badSocketKeysAreUsageErrors() {
        assertEquals(2, run("serve", "--device", "loopback:socket=/tmp/a.sock,socket-mode=rw"));
        assertMessage("socket-mode=rw", "octal");
        assertEquals(2, run("serve", "--device", "loopback:socket=/tmp/a.sock,allow-uid=0:x"));
        assertMessage("allow-uid=0:x", "'x' is not a uid");
        assertEquals(2, run("serve", "--device", "loopback:connect=/tmp/a.sock,socket-mode=0660"));
        assertMessage("socket-mode applies to a socket jvhost creates");
        assertEquals(0, hostsCreated);
    }

    @Test
    void socketPathServesTheOneDeviceWithoutASocket() {
        assertEquals(0, run("serve", "--socket-path", "/tmp/jvhost-s.sock", "--device", "loopback:queues=2",
                "--device", "loopback:socket=/tmp/jvhost-a.sock"), err.toString());
        assertEquals(List.of(Path.of("/tmp/jvhost-s.sock"), Path.of("/tmp/jvhost-a.sock")), host.sockets);
        assertEquals(Host.Mode.LISTEN, host.modes.get(0));
    }

    @Test
    void fdServesTheOneDeviceWithoutASocket() {
        assertEquals(0, run("serve", "--fd", "3", "--device", "loopback"), err.toString());
        assertEquals(List.of(3), host.fds);
        assertEquals(List.of("loopback@inherited-fd"), host.names);
    }

    @Test
    void socketPathAndFdMisuseAreUsageErrors() {
        assertEquals(2, run("serve", "--socket-path", "/tmp/a.sock", "--fd", "3", "--device", "loopback"));
        assertMessage("exclude each other");
        assertEquals(2, run("serve", "--socket-path", "/tmp/a.sock", "--device", "loopback", "--device", "loopback"));
        assertMessage("both lack socket=PATH");
        assertEquals(2, run("serve", "--socket-path", "/tmp/a.sock", "--device", "loopback:socket=/tmp/b.sock"));
        assertMessage("every --device names its own socket");
        assertEquals(2, run("serve", "--fd", "3", "--device", "loopback:socket-mode=0660"));
        assertMessage("does not apply to an inherited socket");
        assertEquals(0, hostsCreated);
    }

    @Test
    void printCapabilitiesNeedsNoDeviceAndCreatesNone() {
        // the built-in types are net (loopback, net) and block (blk): without --device there is no one answer
        assertEquals(2, run("serve", "--print-capabilities"));
        assertMessage("the device types differ", "blk", "loopback, net", "give --device TYPE");
        assertEquals(0, run("serve", "--print-capabilities", "--device", "blk"), err.toString());
        assertEquals("{\"type\": \"block\", \"features\": []}", out.toString().trim());
        out.getBuffer().setLength(0);
        // a TAP name too long to create: the net device is never created to answer, so nothing is refused
        assertEquals(0, run("serve", "--print-capabilities", "--device", "net:tap=jvhost-capabilities-probe"),
                err.toString());
        assertEquals("{\"type\": \"net\"}", out.toString().trim());
        assertEquals(0, hostsCreated);
    }

    @Test
    void printCapabilitiesPrintsTheSpecJsonAndServesNothing() {
        assertEquals(0, run("serve", "--print-capabilities", "--device", "loopback"));
        assertEquals("{\"type\": \"net\"}", out.toString().trim());
        assertEquals(0, run("serve", "--device", "loopback", "--socket-path", "/tmp/x.sock", "--print-capabilities"));
        assertEquals(0, hostsCreated);
        assertEquals(2, run("serve", "--device", "tap", "--print-capabilities"));
        assertMessage("tap");
    }

    @Test
    void missingDeviceIsAUsageError() {
        assertEquals(2, run("serve"));
        assertMessage("nothing to serve: give --device, --config or --control");
        assertEquals(0, hostsCreated);
    }

    @Test
    void twoDevicesOnOneSocketAreRejected() {
        assertEquals(2, run("serve", "--device", "loopback:socket=/tmp/jvhost-a.sock",
                "--device", "loopback:connect=/tmp/../tmp/jvhost-a.sock"));
        assertMessage("already used by 'loopback:socket=/tmp/jvhost-a.sock'");
        assertTrue(host.devices.isEmpty() && host.closed, "nothing is served");
    }

    @Test
    void pollMicrosIsPassedToTheHostAndZeroDisablesPolling() {
        assertEquals(0, run("serve", "--poll-us", "0", "--device", "loopback:socket=/tmp/jvhost-a.sock"), err.toString());
        assertEquals(0, requestedPollMicros);
        assertEquals(0, run("serve", "--poll-us", "200", "--device", "loopback:socket=/tmp/jvhost-a.sock"), err.toString());
        assertEquals(200, requestedPollMicros);
        assertEquals(new Polling(200, Polling.DEFAULT_MAX_MICROS), requestedPolling, "grows to the default maximum");
        assertEquals(0, run("serve", "--poll-us", "5000", "--device", "loopback:socket=/tmp/jvhost-a.sock"), err.toString());
        assertEquals(new Polling(5000, 5000), requestedPolling, "a start above the default maximum is a fixed time");
    }

    @Test
    void pollMaxMicrosSetsTheCeilingFromTheCommandLineElseTheConfigFile(@TempDir Path dir) throws IOException {
        assertEquals(0, run("serve", "--poll-max-us", "50", "--device", "loopback:socket=/tmp/jvhost-a.sock"), err.toString());
        assertEquals(new Polling(50, 50), requestedPolling, "the pre-adaptive fixed 50 us");
        assertEquals(0, run("serve", "--poll-us", "0", "--poll-max-us", "20", "--device", "loopback:socket=/tmp/jvhost-a.sock"),
                err.toString());
        assertEquals(0, requestedPolling.micros(), "polling off, whatever the maximum");
        Path file = dir.resolve("jvhost.conf");
        Files.writeString(file, String.join("\n", "[host]", "poll-us = 20", "poll-max-us = 400",
                "[device vm1]", "type = loopback", "socket = vm1.sock"));
        assertEquals(0, run("serve", "--config", file.toString()), err.toString());
        assertEquals(new Polling(20, 400), requestedPolling, "[host] poll-us and poll-max-us");
        assertEquals(0, run("serve", "--poll-max-us", "2000", "--config", file.toString()), err.toString());
        assertEquals(new Polling(20, 2000), requestedPolling, "the command line wins over [host] poll-max-us");
    }

    @Test
    void aBadPollMaximumIsAUsageErrorNamingIt(@TempDir Path dir) throws IOException {
        assertEquals(2, run("serve", "--poll-us", "100", "--poll-max-us", "99", "--device", "loopback:socket=/tmp/jvhost-a.sock"));
        assertMessage("--poll-max-us 99: must not be below --poll-us 100");
        assertEquals(2, run("serve", "--poll-max-us", "-3", "--device", "loopback:socket=/tmp/jvhost-a.sock"));
        assertMessage("--poll-max-us -3: must be between 0 and 1000000");
        assertEquals(2, run("serve", "--poll-max-us", "2000000", "--device", "loopback:socket=/tmp/jvhost-a.sock"));
        assertMessage("--poll-max-us 2000000: must be between 0 and 1000000");
        assertEquals(0, hostsCreated);
        Path file = dir.resolve("bad.conf");
        Files.writeString(file, String.join("\n", "[host]", "poll-max-us = soon",
                "[device vm1]", "type = loopback", "socket = vm1.sock"));
        assertEquals(2, run("serve", "--config", file.toString()));
        assertMessage("bad.conf:2: [host] key poll-max-us");
    }

    @Test
    void guestMemoryLimitsComeFromTheCommandLineElseTheConfigFileElseTheDefaults(@TempDir Path dir) throws IOException {
        assertEquals(0, run("serve", "--device", "loopback:socket=/tmp/jvhost-a.sock"), err.toString());
        assertEquals(MemoryBudget.DEFAULT_CONNECTION_LIMIT, requestedMemory.connectionLimit());
        assertEquals(MemoryBudget.DEFAULT_HOST_LIMIT, requestedMemory.hostLimit());
        assertEquals(0, run("serve", "--max-guest-memory", "512G", "--max-mapped-memory", "2T",
                "--device", "loopback:socket=/tmp/jvhost-a.sock"), err.toString());
        assertEquals(512L << 30, requestedMemory.connectionLimit());
        assertEquals(2L << 40, requestedMemory.hostLimit());

        Path file = dir.resolve("jvhost.conf");
        Files.writeString(file, String.join("\n", "[host]", "max-guest-memory = 1T", "max-mapped-memory = 8TiB",
                "[device vm1]", "type = loopback", "socket = vm1.sock"));
        assertEquals(0, run("serve", "--config", file.toString()), err.toString());
        assertEquals(1L << 40, requestedMemory.connectionLimit(), "[host] max-guest-memory");
        assertEquals(8L << 40, requestedMemory.hostLimit(), "[host] max-mapped-memory");
        assertEquals(0, run("serve", "--max-guest-memory", "64G", "--config", file.toString()), err.toString());
        assertEquals(64L << 30, requestedMemory.connectionLimit(), "the command line wins over [host]");
    }

    @Test
    void aBadGuestMemoryLimitIsAUsageErrorNamingTheOption(@TempDir Path dir) throws IOException {
        assertEquals(2, run("serve", "--max-guest-memory", "lots", "--device", "loopback:socket=/tmp/jvhost-a.sock"));
        assertMessage("--max-guest-memory 'lots' is not a positive size");
        assertEquals(0, hostsCreated);
        Path file = dir.resolve("bad.conf");
        Files.writeString(file, String.join("\n", "[host]", "max-mapped-memory = 0",
                "[device vm1]", "type = loopback", "socket = vm1.sock"));
        assertEquals(2, run("serve", "--config", file.toString()));
        assertMessage("bad.conf:2: [host] key max-mapped-memory: '0' is not a positive size");
    }

    @Test
    void pollMicrosOutOfRangeIsAUsageError() {
        assertEquals(2, run("serve", "--poll-us", "-1", "--device", "loopback:socket=/tmp/jvhost-a.sock"));
        assertMessage("--poll-us -1", "between 0 and");
        assertEquals(0, hostsCreated);
    }

    @Test
    void workersOutOfRangeIsAUsageError() {
        assertEquals(2, run("serve", "--workers", "0", "--device", "loopback:socket=/tmp/jvhost-a.sock"));
        assertMessage("--workers 0", "between 1 and");
        assertEquals(0, hostsCreated);
    }

    @Test
    void failureToBindExitsWithOneAndClosesTheHost() {
        host.failBind = true;
        assertEquals(1, run("serve", "--device", "loopback:socket=/tmp/jvhost-a.sock"));
        assertMessage("cannot bind /tmp/jvhost-a.sock");
        assertTrue(host.closed);
    }

    @Test
    void configFileServesItsDevicesByNameWithPathsRelativeToTheFile(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("jvhost.conf");
        Files.writeString(file, String.join("\n",
                "# two NICs",
                "[host]",
                "workers = 3",
                "poll-us = 120",
                "",
                "[device vm1]",
                "type = loopback",
                "socket = vm1.sock",
                "queues = 2",
                "; connect instead of listen",
                "[device vm2]",
                "type=loopback",
                "connect=/tmp/jvhost-vm2.sock"));
        assertEquals(0, run("serve", "--config", file.toString()), err.toString());
        assertEquals(3, requestedWorkers, "[host] workers");
        assertEquals(120, requestedPollMicros, "[host] poll-us");
        assertEquals(List.of("vm1", "vm2"), host.names);
        assertEquals(List.of(dir.resolve("vm1.sock"), Path.of("/tmp/jvhost-vm2.sock")), host.sockets);
        assertEquals(List.of(Host.Mode.LISTEN, Host.Mode.CONNECT), host.modes);
        assertEquals(4, host.devices.get(0).maxQueues());
        assertEquals(0, run("serve", "--workers", "2", "--config", file.toString()), err.toString());
        assertEquals(2, requestedWorkers, "the command line wins over [host]");
        assertEquals(0, run("serve", "--poll-us", "0", "--config", file.toString()), err.toString());
        assertEquals(0, requestedPollMicros, "the command line wins over [host] poll-us");
    }

    @Test
    void configErrorsNameFileLineDeviceAndKeyAllAtOnce(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("bad.conf");
        Files.writeString(file, String.join("\n",
                "[device a]",                     // 1
                "type = loopback",                // 2
                "socket = /tmp/jvhost-a.sock",    // 3
                "speed = 10G",                    // 4
                "[device b]",                     // 5
                "type = tap",                     // 6
                "socket = /tmp/jvhost-b.sock",    // 7
                "[device c]",                     // 8
                "type = loopback",                // 9
                "socket = /tmp/jvhost-a.sock",    // 10
                "[device d]",                     // 11
                "type = loopback"));              // 12
        assertEquals(2, run("serve", "--config", file.toString()));
        assertMessage(file + ":11: device d: key socket: missing");
        assertTrue(host.devices.isEmpty() && host.closed, "nothing is served");

        Files.writeString(file, String.join("\n",
                "[device a]", "type = loopback", "socket = /tmp/jvhost-a.sock", "speed = 10G",
                "[device b]", "type = tap", "socket = /tmp/jvhost-b.sock",
                "[device c]", "type = loopback", "socket = /tmp/jvhost-a.sock"));
        err.getBuffer().setLength(0);
        assertEquals(2, run("serve", "--config", file.toString()));
        assertMessage(file + ":4: device a: key speed: device type loopback has no option 'speed'",
                file + ":6: device b: key type: unknown device type 'tap'",
                file + ":10: device c: key socket: socket /tmp/jvhost-a.sock is already used by device a");
        assertTrue(host.devices.isEmpty(), "nothing is served");
    }

    @Test
    void everyMistakeOfAConfigFileIsReportedInOnePass(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("mistakes.conf");
        Files.writeString(file, String.join("\n",
                "[host]",                                  // 1
                "workers = many",                          // 2
                "metrics = 10.0.0.1:9109",                 // 3
                "[device a]",                              // 4
                "type = loopback",                         // 5
                "socket = /tmp/jvhost-a.sock",             // 6
                "queues = 99",                             // 7
                "[device b]",                              // 8
                "type = loopback",                         // 9
                "socket = /tmp/jvhost-b.sock",             // 10
                "speed = 10G",                             // 11
                "[device c]",                              // 12
                "type = loopback",                         // 13
                "socket = /tmp/jvhost-c.sock",             // 14
                "socket-group = no-such-group-jvhost",     // 15
                "[device d]",                              // 16
                "type = loopback"));                       // 17
        assertEquals(2, run("serve", "--config", file.toString()));
        assertMessage(file + ":2: [host] key workers: 'many' is not a number",
                file + ":3: [host] key metrics: ", "10.0.0.1 is not a loopback address",
                file + ":16: device d: key socket: missing",
                file + ":7: device a: key queues: queues=99: must be between 1 and 8",
                file + ":11: device b: key speed: device type loopback has no option 'speed'",
                file + ":15: device c: key socket-group: no group named 'no-such-group-jvhost' on this system: "
                        + "create it (groupadd no-such-group-jvhost)");
        assertTrue(host.devices.isEmpty() && host.closed, "nothing is served");
    }

    @Test
    void configValuesTheDeviceRefusesAreAllReportedAndNothingStarts(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("values.conf");
        Files.writeString(file, String.join("\n",
                "[device good]", "type = loopback", "socket = /tmp/jvhost-g.sock",
                "[device a]", "type = loopback", "socket = /tmp/jvhost-a.sock", "queues = 99",
                "[device b]", "type = loopback", "socket = /tmp/jvhost-b.sock", "mac = 01:00:5e:00:00:01"));
        assertEquals(2, run("serve", "--config", file.toString()));
        assertMessage(file + ":7: device a: key queues: queues=99: must be between 1 and 8",
                file + ":11: device b: key mac:", "multicast");
        assertTrue(host.devices.isEmpty(), "no device is served when one is refused");
        assertTrue(host.closed);
    }

    @Test
    void configSyntaxErrorsAreListedWithTheirLines(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("syntax.conf");
        Files.writeString(file, String.join("\n",
                "workers = 2",
                "[hosts]",
                "[device a]",
                "type = loopback",
                "type = loopback",
                "socket = /tmp/x",
                "connect = /tmp/y",
                "[device a]",
                "just words",
                "[host]",
                "workers = many",
                "poll-us = -5"));
        assertEquals(2, run("serve", "--config", file.toString()));
        assertMessage(file + ":1: key 'workers' before any",
                file + ":2: unknown section [hosts]",
                file + ":5: device a: key type: given again (first at line 4)",
                file + ":7: device a: key connect: give socket = PATH",
                file + ":8: device a: defined again (first at line 3)",
                file + ":9: expected key = value",
                file + ":11: [host] key workers: 'many' is not a number",
                file + ":12: [host] key poll-us: -5 is not between 0 and 1000000");
        assertEquals(2, run("serve", "--config", dir.resolve("missing.conf").toString()));
        assertMessage("cannot read config file " + dir.resolve("missing.conf") + ": no such file or directory");
        assertFalse(err.toString().contains("Exception"), err.toString());
    }

    @Test
    void configAndDeviceCannotBeCombined(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("a.conf");
        Files.writeString(file, "[device a]\ntype = loopback\nsocket = /tmp/jvhost-a.sock\n");
        assertEquals(2, run("serve", "--config", file.toString(), "--device", "loopback:socket=/tmp/jvhost-b.sock"));
        assertMessage("--config and --device cannot be combined");
    }

    @Test
    void metricsOnANonLoopbackAddressIsRefused() {
        assertEquals(2, run("serve", "--metrics", "10.1.2.3:9109", "--device", "loopback:socket=/tmp/jvhost-a.sock"));
        assertMessage("--metrics", "10.1.2.3 is not a loopback address");
        assertEquals(2, run("serve", "--metrics", "0.0.0.0:9109", "--device", "loopback:socket=/tmp/jvhost-a.sock"));
        assertMessage("0.0.0.0 is not a loopback address");
        assertEquals(2, run("serve", "--metrics", "127.0.0.1", "--device", "loopback:socket=/tmp/jvhost-a.sock"));
        assertMessage("expected HOST:PORT");
        assertEquals(0, hostsCreated);
    }

    @Test
    void devicesListsTypesWithOptionsAndDefaults() {
        assertEquals(0, run("devices"));
        String listing = out.toString();
        assertTrue(listing.contains("loopback - virtio-net"), listing);
        assertTrue(listing.matches("(?s).*mac\\s+default 02:00:00:00:00:01.*"), listing);
        assertTrue(listing.matches("(?s).*queues\\s+default 1 .*"), listing);
        assertTrue(listing.matches("(?s).*mrg_rxbuf\\s+default on .*"), listing);
    }

    @Test
    void devicesShowsEachTypesOriginAndVersionAndReportsBrokenPluginsByFile(@TempDir Path plugins) throws IOException {
        Path echo = PluginJars.build("echo", plugins.resolve("echo.jar"), "1.2.3");
        Path throwing = PluginJars.build("throwing", plugins.resolve("throwing.jar"), null);
        assertEquals(0, run("devices", "--plugins", plugins.toString()));
        String listing = out.toString();
        assertTrue(listing.contains("Plugins directory: " + plugins), listing);
        assertTrue(listing.contains("echo - test plugin: config space holds the greeting option\n"
                + "    origin   " + echo + "\n    version  1.2.3\n"), listing);
        assertTrue(listing.matches("(?s).*greeting\\s+default hello\\s+the config space text.*"), listing);
        assertTrue(listing.contains("loopback - virtio-net"), listing);
        assertTrue(listing.contains("    origin   built-in\n"), listing);
        assertMessage("error: " + throwing + ": a device provider failed to load",
                "licence file /etc/throwing.lic is missing");
    }

    @Test
    void serveCreatesADeviceOfAPluginType(@TempDir Path plugins) throws IOException {
        PluginJars.build("echo", plugins.resolve("echo.jar"), null);
        assertEquals(0, run("serve", "--plugins", plugins.toString(),
                "--device", "echo:socket=/tmp/jvhost-e.sock,greeting=hi",
                "--device", "loopback:socket=/tmp/jvhost-a.sock"), err.toString());
        assertEquals(List.of("echo@/tmp/jvhost-e.sock", "loopback@/tmp/jvhost-a.sock"), host.names);
        byte[] config = new byte[2];
        host.devices.get(0).readConfig(0, config);
        assertEquals("hi", new String(config, java.nio.charset.StandardCharsets.US_ASCII));
    }

    @Test
    void aMissingPluginsDirectoryGivenExplicitlyIsAUsageError(@TempDir Path dir) {
        Path missing = dir.resolve("no-such-plugins");
        assertEquals(2, run("devices", "--plugins", missing.toString()));
        assertMessage("--plugins " + missing + ": no such directory");
        assertEquals(2, run("serve", "--plugins", missing.toString(), "--device", "loopback:socket=/tmp/jvhost-a.sock"));
        assertEquals(0, hostsCreated);
    }

    @Test
    void versionAndHelpWorkOnEveryCommand() {
        assertEquals(0, run("--version"));
        // the commit is the build's (target/classes holds build-commit.properties), not "unknown"
        assertTrue(out.toString().matches("jvhost dev \\(commit [0-9a-f]{7,40}(-dirty)?, device SPI "
                + java.util.regex.Pattern.quote(org.jvhost.spi.SpiVersion.string()) + "\\)\\R"), out.toString());
        for (String command : new String[] {"serve", "devices", "ctl"}) {
            out.getBuffer().setLength(0);
            assertEquals(0, run(command, "--help"));
            assertTrue(out.toString().startsWith("Usage: jvhost " + command), out.toString());
        }
    }

    @Test
    void noCommandIsAUsageError() {
        assertEquals(2, run());
        assertMessage("missing command");
    }

    private void assertMessage(String... parts) {
        String text = err.toString();
        for (String part : parts) {
            assertTrue(text.contains(part), () -> "stderr lacks '" + part + "':\n" + text);
        }
    }
}
