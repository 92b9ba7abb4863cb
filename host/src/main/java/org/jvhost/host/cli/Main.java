package org.jvhost.host.cli;

import java.io.IOException;
import java.io.InputStream;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.security.CodeSource;
import java.util.Properties;
import org.jvhost.host.devices.DeviceHost;
import org.jvhost.host.plugin.BuiltInPlugins;
import org.jvhost.host.plugin.DeviceTypeLoader;
import org.jvhost.host.systemd.ServiceNotifier;
import org.jvhost.spi.SpiVersion;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.IVersionProvider;

/** The {@code jvhost} executable: {@code java -jar jvhost.jar COMMAND ...}. */
public final class Main {

    /** slf4j-simple settings jvhost prefers; {@code --log-level} or a {@code -D} the user gave wins. */
    private static final String[][] LOG_DEFAULTS = {
        {"org.slf4j.simpleLogger.logFile", "System.err"},
        {"org.slf4j.simpleLogger.defaultLogLevel", "info"},
        {"org.slf4j.simpleLogger.showDateTime", "true"},
        {"org.slf4j.simpleLogger.dateTimeFormat", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"},
        {"org.slf4j.simpleLogger.showThreadName", "true"},
        {"org.slf4j.simpleLogger.showShortLogName", "true"},
    };

    private Main() {
    }

    public static void main(String[] args) {
        // Before anything creates a logger: slf4j-simple reads these once, at its first use.
        LogOption.apply(args);
        for (String[] setting : LOG_DEFAULTS) {
            if (System.getProperty(setting[0]) == null) {
                System.setProperty(setting[0], setting[1]);
            }
        }
        if (args.length > 0 && args[0].equals("ctl")) {
            // the light path: a client needs neither the device types nor the built-in plugins' copies
            System.exit(ctlOnly().execute(args));
        }
        Path location = hostLocation();
        int code;
        try (BuiltInPlugins builtIns = location == null ? BuiltInPlugins.none() : BuiltInPlugins.find(location)) {
            DeviceTypeLoader loader = new DeviceTypeLoader(Main.class.getClassLoader(), builtIns,
                    DeviceTypeLoader.defaultDirFor(location).orElse(null));
            Lifecycle process = Lifecycle.process(builtIns::close, ServiceNotifier.fromEnvironment());
            code = commandLine(loader, DeviceHost::engine, process).execute(args);
        }
        System.exit(code);
    }

    /** jvhost.jar (or the classes directory when run from a build), or null if the JVM does not say. */
    private static Path hostLocation() {
        CodeSource source = Main.class.getProtectionDomain().getCodeSource();
        if (source == null || source.getLocation() == null) {
            return null;
        }
        try {
            return Path.of(source.getLocation().toURI());
        } catch (URISyntaxException | IllegalArgumentException e) {
            return null;
        }
    }

    /**
     * The command tree as documentation sees it (man pages, shell completion): every command and
     * option, with no device types loaded and no host to start.
     */
    public static CommandLine documentedCommands() {
        return commandLine(new DeviceTypeLoader(Main.class.getClassLoader(), BuiltInPlugins.none(), null),
                DeviceHost::engine, Lifecycle.process(() -> { }, ServiceNotifier.to(null)));
    }

    /** The command tree; tests pass their own device types, a fake host and a lifecycle that returns at once. */
    static CommandLine commandLine(DeviceTypeLoader types, DeviceHost.Factory hosts, Lifecycle lifecycle) {
        CommandLine cli = new CommandLine(new Jvhost());
        cli.addSubcommand(new CommandLine(new ServeCommand(types, hosts, lifecycle)));
        cli.addSubcommand(new CommandLine(new DevicesCommand(types)));
        cli.addSubcommand(new CommandLine(new CtlCommand()));
        return withHandlers(cli);
    }

    /** {@code jvhost ctl} alone: the same messages, without loading what serve needs. */
    static CommandLine ctlOnly() {
        CommandLine cli = new CommandLine(new Jvhost());
        cli.addSubcommand(new CommandLine(new CtlCommand()));
        return withHandlers(cli);
    }

    private static CommandLine withHandlers(CommandLine cli) {
        cli.setParameterExceptionHandler(Main::usageError);
        cli.setExecutionExceptionHandler((e, failed, parsed) -> {
            failed.getErr().println(failed.getCommandSpec().qualifiedName() + ": " + describe(e));
            if (!(e instanceof java.io.IOException || e instanceof java.io.UncheckedIOException)) {
                e.printStackTrace(failed.getErr());
            }
            failed.getErr().flush();
            return CommandLine.ExitCode.SOFTWARE;
        });
        return cli;
    }

    /** A usage error: the message and where to find help, not the whole usage text. Exit code 2. */
    private static int usageError(CommandLine.ParameterException e, String[] args) {
        CommandLine failed = e.getCommandLine();
        String name = failed.getCommandSpec().qualifiedName();
        failed.getErr().println(name + ": " + e.getMessage());
        failed.getErr().println("Try '" + name + " --help' for usage.");
        failed.getErr().flush();
        return CommandLine.ExitCode.USAGE;
    }

    private static String describe(Throwable e) {
        return e.getMessage() != null ? e.getMessage() : e.toString();
    }

    /** The top-level command: only subcommands. */
    @Command(name = "jvhost", mixinStandardHelpOptions = true, versionProvider = Version.class,
            description = "Serves virtio devices to virtual machines over vhost-user.",
            synopsisSubcommandLabel = "COMMAND")
    static final class Jvhost implements Runnable {
        @picocli.CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public void run() {
            throw new CommandLine.ParameterException(spec.commandLine(), "missing command (serve, devices or ctl)");
        }
    }

    /**
     * {@code --version}: {@code jvhost VERSION (commit ID, device SPI MAJOR.MINOR)}. VERSION is the
     * jar's Implementation-Version ({@code dev} when run from classes); the commit comes from
     * {@value #BUILD_COMMIT}, which the build writes (git-commit-id-maven-plugin), with {@code -dirty}
     * for a build of uncommitted changes, or {@code unknown} when built outside a git checkout.
     */
    static final class Version implements IVersionProvider {
        static final String BUILD_COMMIT = "build-commit.properties";

        @Override
        public String[] getVersion() {
            String version = Main.class.getPackage().getImplementationVersion();
            return new String[] {"jvhost " + (version != null ? version : "dev") + " (commit " + commit()
                + ", device SPI " + SpiVersion.string() + ")"};
        }

        static String commit() {
            Properties build = new Properties();
            try (InputStream in = Version.class.getResourceAsStream(BUILD_COMMIT)) {
                if (in != null) {
                    build.load(in);
                }
            } catch (IOException e) {
                return "unknown (" + BUILD_COMMIT + ": " + e.getMessage() + ")";
            }
            String id = build.getProperty("git.commit.id.abbrev", "");
            if (id.isEmpty()) {
                return "unknown";
            }
            return "true".equals(build.getProperty("git.dirty")) ? id + "-dirty" : id;
        }
    }
}
