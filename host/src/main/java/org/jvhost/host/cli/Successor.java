package org.jvhost.host.cli;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code jvhost ctl upgrade}: the running {@code serve} starts its own successor, which then takes over
 * through the handover socket (README, "Hot upgrade"). The successor runs this process's command line
 * again (the java launcher, its options, {@code -jar} with the jar's path, so a package upgrade's new jar,
 * and serve's arguments) plus {@code --takeover}, writing to this process's standard output and error
 * (the journal under systemd). Being a child, it is in the unit's control group, where systemd accepts
 * it as the new main process when this one reports {@code MAINPID=} at the handover.
 */
final class Successor {
    static final String TAKEOVER = "--takeover";

    private Successor() {
    }

    /** Starts the successor; its pid. */
    static long start() throws IOException {
        ProcessHandle.Info info = ProcessHandle.current().info();
        if (info.command().isEmpty() || info.arguments().isEmpty()) {
            throw new IOException("cannot read this process's command line to start its successor");
        }
        List<String> cmd = commandLine(info.command().get(), List.of(info.arguments().get()));
        return new ProcessBuilder(cmd).inheritIO().start().pid();
    }

    /** {@code command arguments...}, plus {@value #TAKEOVER} unless it is there (a successor's successor). */
    static List<String> commandLine(String command, List<String> arguments) {
        List<String> cmd = new ArrayList<>();
        cmd.add(command);
        cmd.addAll(arguments);
        if (!arguments.contains(TAKEOVER)) {
            cmd.add(TAKEOVER);
        }
        return cmd;
    }
}
