package org.jvhost.host.cli;

import java.nio.file.Path;
import java.util.Map;
import picocli.CommandLine;

/** Keeps commands under test away from the machine's default control socket and environment. */
final class Isolated {
    private Isolated() {
    }

    /** {@code cli} with an empty environment and no /run/jvhost for {@code serve} and {@code ctl}. */
    static CommandLine cli(CommandLine cli, Map<String, String> env) {
        ServeCommand serve = cli.getSubcommands().get("serve").getCommand();
        serve.env = env;
        serve.runtimeDir = Path.of("/nonexistent/jvhost-test-runtime-dir");
        CtlCommand ctl = cli.getSubcommands().get("ctl").getCommand();
        ctl.env = env;
        return cli;
    }
}
