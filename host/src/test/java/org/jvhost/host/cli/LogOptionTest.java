package org.jvhost.host.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.jvhost.host.plugin.BuiltInPlugins;
import org.jvhost.host.plugin.DeviceTypeLoader;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code --log-level}: levels without -D flags, checked like any option, applied before loggers exist. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class LogOptionTest {
    private static final String A = LogOption.LOGGER_PROPERTY_PREFIX + "com.example.a";
    private static final String B = LogOption.LOGGER_PROPERTY_PREFIX + "com.example.B";

    @TempDir
    Path dir;

    @AfterEach
    void clear() {
        System.clearProperty(A);
        System.clearProperty(B);
    }

    @Test
    void levelsAndPackageLevelsBecomeSlf4jSimpleProperties() {
        assertEquals(Map.of(LogOption.DEFAULT_LEVEL_PROPERTY, "warn", A, "debug"),
                LogOption.properties(List.of("WARN", "com.example.a=debug")));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LogOption.properties(List.of("loud")));
        assertEquals("--log-level 'loud': expected LEVEL or PACKAGE=LEVEL, with LEVEL one of trace, debug, info, "
                + "warn, error, off", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> LogOption.properties(List.of("com..x=info")));
    }

    @Test
    void applyFindsTheOptionAnywhereAlsoInArgumentFiles() throws Exception {
        Path args = dir.resolve("args");
        Files.writeString(args, "--device loopback:socket=/tmp/x.sock\n--log-level com.example.B=error\n");
        LogOption.apply(new String[] {"serve", "--workers", "2", "--log-level=com.example.a=trace", "@" + args});
        assertEquals("trace", System.getProperty(A));
        assertEquals("error", System.getProperty(B));
        LogOption.apply(new String[] {"serve", "--log-level"}); // left to the real parse
    }

    @Test
    void everyCommandTakesItAndABadLevelIsAUsageError() {
        DeviceTypeLoader types = new DeviceTypeLoader(getClass().getClassLoader(), BuiltInPlugins.none(), null);
        var cli = Isolated.cli(Main.commandLine(types, (w, p, m) -> {
            throw new AssertionError("serves nothing");
        }, new RecordingLifecycle()), Map.of());
        var err = new java.io.StringWriter();
        cli.setErr(new java.io.PrintWriter(err));
        cli.setOut(new java.io.PrintWriter(new java.io.StringWriter()));
        assertEquals(0, cli.execute("serve", "--log-level", "warn", "--print-capabilities", "--device", "loopback"));
        assertEquals(0, cli.execute("devices", "--log-level", "com.example.a=debug"));
        assertEquals(2, cli.execute("serve", "--log-level", "loud", "--device", "loopback:socket=/tmp/x.sock"), err.toString());
        assertTrue(err.toString().contains("--log-level 'loud': expected LEVEL or PACKAGE=LEVEL"), err.toString());
        assertEquals(2, cli.execute("ctl", "--log-level", "loud", "list"));
    }
}
