package org.jvhost.host.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The successor's command line for {@code ctl upgrade}: the running one's, with --takeover once. */
class SuccessorTest {

    @Test
    void runsTheSameCommandLinePlusTakeover() {
        assertEquals(List.of("/usr/bin/java", "-Xmx256m", "-jar", "/usr/share/jvhost/jvhost.jar", "serve", "--config",
                "/etc/jvhost/jvhost.conf", "--takeover"), Successor.commandLine("/usr/bin/java", List.of("-Xmx256m",
                "-jar", "/usr/share/jvhost/jvhost.jar", "serve", "--config", "/etc/jvhost/jvhost.conf")));
    }

    @Test
    void aSuccessorsSuccessorDoesNotRepeatTakeover() {
        List<String> args = List.of("-jar", "jvhost.jar", "serve", "--control", "/run/c.sock", "--takeover");
        assertEquals(1, Successor.commandLine("java", args).stream().filter("--takeover"::equals).count());
    }
}
