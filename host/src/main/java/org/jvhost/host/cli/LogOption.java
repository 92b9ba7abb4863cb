package org.jvhost.host.cli;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Model.PositionalParamSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code --log-level [PACKAGE=]LEVEL[,...]}, shared by every command: the level of every logger, and of
 * the loggers of a package (or class), without {@code -D} flags before {@code -jar}.
 *
 * <p>slf4j-simple fixes a logger's level when the logger is created, and the commands' classes create
 * theirs before picocli parses anything, so {@link Main} applies the option first with
 * {@link #apply(String[])}, from the raw arguments (argument files expanded); the option here documents
 * and checks it.
 */
final class LogOption {
    static final String DEFAULT_LEVEL_PROPERTY = "org.slf4j.simpleLogger.defaultLogLevel";
    static final String LOGGER_PROPERTY_PREFIX = "org.slf4j.simpleLogger.log.";
    static final String OPTION = "--log-level";
    private static final Set<String> LEVELS = Set.of("trace", "debug", "info", "warn", "error", "off");

    @Spec(Spec.Target.MIXEE)
    CommandSpec spec;

    @Option(names = OPTION, split = ",", paramLabel = "[PACKAGE=]LEVEL",
            description = {"Log level: trace, debug, info (default), warn, error or off; PACKAGE=LEVEL sets it for "
                + "a package or class, e.g. --log-level warn,org.jvhost.engine=debug. Repeatable."})
    void levels(List<String> items) {
        try {
            properties(items);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
    }

    /**
     * The slf4j-simple system properties for {@code items}, each {@code LEVEL} or {@code NAME=LEVEL}.
     *
     * @throws IllegalArgumentException naming the item that is not one of these
     */
    static Map<String, String> properties(List<String> items) {
        Map<String, String> props = new LinkedHashMap<>();
        for (String item : items) {
            int eq = item.indexOf('=');
            String name = eq < 0 ? null : item.substring(0, eq).strip();
            String level = (eq < 0 ? item : item.substring(eq + 1)).strip().toLowerCase(Locale.ROOT);
            if (!LEVELS.contains(level) || (name != null && !name.matches("[A-Za-z_$][\\w$]*(\\.[A-Za-z_$][\\w$]*)*"))) {
                throw new IllegalArgumentException(OPTION + " '" + item + "': expected LEVEL or PACKAGE=LEVEL, "
                        + "with LEVEL one of trace, debug, info, warn, error, off");
            }
            props.put(name == null ? DEFAULT_LEVEL_PROPERTY : LOGGER_PROPERTY_PREFIX + name, level);
        }
        return props;
    }

    /**
     * Sets the system properties for the {@code --log-level} options among {@code args}, before any logger
     * exists. Errors are left to the real parse, which reports them as usage errors.
     */
    static void apply(String[] args) {
        CommandSpec only = CommandSpec.create();
        only.addOption(OptionSpec.builder(OPTION).type(List.class).auxiliaryTypes(String.class).splitRegex(",").build());
        only.addPositional(PositionalParamSpec.builder().type(List.class).auxiliaryTypes(String.class).arity("0..*").build());
        CommandLine cli = new CommandLine(only);
        cli.setUnmatchedArgumentsAllowed(true);
        cli.setUnmatchedOptionsArePositionalParams(true);
        try {
            List<String> items = cli.parseArgs(args).matchedOptionValue(OPTION, List.of());
            properties(items).forEach(System::setProperty);
        } catch (CommandLine.ParameterException | IllegalArgumentException e) {
            // the real parse says what is wrong
        }
    }
}
