package org.jvhost.host.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.jvhost.host.plugin.BuiltInPlugins;
import org.jvhost.host.plugin.DeviceTypeLoader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** The default control socket: $JVHOST_CONTROL, else /run/jvhost/control.sock. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class DefaultControlTest {

    @TempDir
    Path dir;

    @Test
    void theEnvironmentVariableWinsElseRunJvhost() {
        Path mine = dir.resolve("c.sock");
        assertEquals(mine, DefaultControl.forCtl(Map.of(DefaultControl.ENV, mine.toString())));
        assertEquals(Path.of("/run/jvhost/control.sock"), DefaultControl.forCtl(Map.of()));
        assertEquals(mine, DefaultControl.forServe(Map.of(DefaultControl.ENV, mine.toString()), dir.resolve("none")));
        assertEquals(dir.resolve("control.sock"), DefaultControl.forServe(Map.of(), dir));
        assertNull(DefaultControl.forServe(Map.of(), dir.resolve("none")), "no /run/jvhost: no default for serve");
    }

    @Test
    void serveListensOnTheDefaultAndGoesOnWithoutItWhenItCannot() throws Exception {
        Path socket = dir.resolve("control.sock");
        boolean[] listening = {false};
        RecordingLifecycle lifecycle = new RecordingLifecycle() {
            @Override
            public void awaitShutdown() {
                listening[0] = Files.exists(socket);
            }
        };
        StringWriter err = new StringWriter();
        CommandLine cli = Isolated.cli(Main.commandLine(
                new DeviceTypeLoader(getClass().getClassLoader(), BuiltInPlugins.none(), null),
                (w, p, m) -> new RecordingHost(), lifecycle), Map.of(DefaultControl.ENV, socket.toString()));
        cli.setErr(new PrintWriter(err));
        assertEquals(0, cli.execute("serve", "--device", "loopback:socket=" + dir.resolve("a.sock")), err.toString());
        assertTrue(listening[0], "serve listened on $JVHOST_CONTROL");

        cli = Isolated.cli(Main.commandLine(new DeviceTypeLoader(getClass().getClassLoader(), BuiltInPlugins.none(), null),
                (w, p, m) -> new RecordingHost(), new RecordingLifecycle()),
                Map.of(DefaultControl.ENV, dir.resolve("missing/control.sock").toString()));
        cli.setErr(new PrintWriter(err));
        assertEquals(0, cli.execute("serve", "--device", "loopback:socket=" + dir.resolve("a.sock")),
                "a default control socket that cannot be served is a warning");
    }
}
