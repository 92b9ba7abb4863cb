package org.jvhost.host.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** {@code jvhost ctl}'s own handling of its arguments, before anything is sent. */
class CtlCommandTest {

    @Test
    void ctlAddSendsTheSocketPathResolvedInItsOwnDirectory() {
        String cwd = Path.of("").toAbsolutePath().toString();
        assertEquals("loopback:queues=2,socket=" + cwd + "/vm3.sock,mac=52:54:00:00:00:01",
                CtlCommand.absoluteSocket("loopback:queues=2,socket=vm3.sock,mac=52:54:00:00:00:01"));
        assertEquals("loopback:connect=" + Path.of(cwd).getParent() + "/x.sock",
                CtlCommand.absoluteSocket("loopback:connect=../x.sock"));
        assertEquals("loopback:socket=/run/a.sock", CtlCommand.absoluteSocket("loopback:socket=/run/a.sock"));
    }
}
