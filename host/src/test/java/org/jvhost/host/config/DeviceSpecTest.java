package org.jvhost.host.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.jvhost.engine.server.Host;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.DeviceProvider;
import org.jvhost.spi.InvalidOptionException;
import org.jvhost.spi.OptionSpec;
import org.jvhost.spi.VhostUserDevice;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(value = 10, unit = TimeUnit.SECONDS)
class DeviceSpecTest {

    @Test
    void socketMeansListenAndKeepsOtherKeysInOrder() {
        DeviceSpec spec = DeviceSpec.parse("loopback:queues=2,socket=/tmp/a.sock,mac=02:00:00:00:00:09");
        assertEquals("loopback", spec.type());
        assertEquals(Path.of("/tmp/a.sock"), spec.socket());
        assertEquals(Host.Mode.LISTEN, spec.mode());
        assertEquals(List.of("queues", "mac"), List.copyOf(spec.options().keySet()));
        assertEquals("02:00:00:00:00:09", spec.options().get("mac"));
        assertEquals("loopback@/tmp/a.sock", spec.deviceName());
    }

    @Test
    void connectMeansConnect() {
        DeviceSpec spec = DeviceSpec.parse("loopback:connect=/run/qemu.sock");
        assertEquals(Host.Mode.CONNECT, spec.mode());
        assertEquals(Path.of("/run/qemu.sock"), spec.socket());
        assertTrue(spec.options().isEmpty());
    }

    @Test
    void grammarErrorsSayWhatIsWrong() {
        assertRejected("loopback", "expected TYPE:socket=PATH");
        assertRejected(":socket=/tmp/a", "expected TYPE:socket=PATH");
        assertRejected("loopback:", "missing socket=PATH");
        assertRejected("loopback:queues=2", "missing socket=PATH");
        assertRejected("loopback:socket=/tmp/a,queues", "'queues' is not key=value");
        assertRejected("loopback:socket=/tmp/a,=2", "'=2' is not key=value");
        assertRejected("loopback:socket=/tmp/a,,queues=2", "'' is not key=value");
        assertRejected("loopback:socket=/tmp/a,queues=1,queues=2", "key 'queues' given twice");
        assertRejected("loopback:socket=/tmp/a,connect=/tmp/b", "not both");
        assertRejected("loopback:socket=", "empty socket path");
        assertRejected("loopback:socket=/tmp/" + "x".repeat(120), "limited to 107");
    }

    private static void assertRejected(String text, String expected) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DeviceSpec.parse(text));
        assertTrue(e.getMessage().contains(expected), () -> "'" + text + "' gave: " + e.getMessage());
    }

    @Test
    void resolveFillsDefaultsAndKeepsGivenValues() {
        DeviceOptions options = DeviceSpec.parse("t:socket=/tmp/a,b=given").resolveOptions(PROVIDER.options(), Path.of("/"));
        assertEquals(Map.of("a", "1", "b", "given"), options.asMap());
        assertTrue(options.get("c").isEmpty(), "an option without default stays unset");
    }

    @Test
    void resolveRejectsUnknownKeyNamingKeyValueAndAcceptedKeys() {
        DeviceSpec spec = DeviceSpec.parse("t:socket=/tmp/a,colour=blue");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> spec.resolveOptions(PROVIDER.options(), Path.of("/")));
        assertTrue(e.getMessage().contains("has no option 'colour'"), e.getMessage());
        assertTrue(e.getMessage().contains("colour=blue"), e.getMessage());
        assertTrue(e.getMessage().contains("accepts: socket, connect, socket-mode, socket-group, allow-uid, fault-delay-ms, "
                + "fault-drop-after-frames, fault-drop-after-message, fault-drop-sweep, fault-nack, fault-queues, fault-seed, "
                + "fault-stall-rx, fault-stall-tx, strict, trace, trace-format, "
                + "trace-max-bytes, a, b, c"), e.getMessage());
    }

    private static final DeviceProvider PROVIDER = new DeviceProvider() {
        @Override
        public String type() {
            return "t";
        }

        @Override
        public String description() {
            return "test";
        }

        @Override
        public List<OptionSpec> options() {
            return List.of(new OptionSpec("a", "a", "1"), new OptionSpec("b", "b", "2"), new OptionSpec("c", "c", null));
        }

        @Override
        public VhostUserDevice create(DeviceOptions options, DeviceContext context) {
            throw new AssertionError("not called");
        }

        @Override
        public int spiMajorVersion() {
            return org.jvhost.spi.SpiVersion.MAJOR;
        }
    };

    @Test
    void pathOptionsResolveWhereTheDeviceWasDeclaredAndTheControlApiRefusesRelativeOnes(@TempDir Path dir)
            throws Exception {
        Path file = dir.resolve("jvhost.conf");
        Files.writeString(file, "[device a]\ntype = t\nsocket = a.sock\n");
        DeviceEntry fromFile = ConfigFile.read(file).devices().get(0);
        assertEquals(dir.toAbsolutePath(), fromFile.baseDir());
        assertEquals(dir.resolve("images/disk.img").toAbsolutePath(),
                new DeviceOptions(Map.of("image", "images/../images/disk.img"), fromFile.baseDir()).getPath("image"));
        assertEquals(Path.of("/srv/disk.img"), new DeviceOptions(Map.of("image", "/srv/disk.img"), null).getPath("image"));

        DeviceEntry fromControl = DeviceEntry.of(DeviceSpec.parse("t:socket=/tmp/a.sock"), DeviceEntry.Origin.CONTROL);
        InvalidOptionException e = assertThrows(InvalidOptionException.class,
                () -> new DeviceOptions(Map.of("image", "disk.img"), fromControl.baseDir()).getPath("image"));
        assertEquals("image=disk.img: a relative path; give an absolute one", e.getMessage());
        assertEquals(Path.of("").toAbsolutePath(),
                DeviceEntry.of(DeviceSpec.parse("t:socket=/tmp/a.sock"), DeviceEntry.Origin.COMMAND_LINE).baseDir());
    }
}
