package org.jvhost.host.config;

import java.util.List;

/**
 * A configuration (a config file, the {@code --device} arguments, or a control request) that cannot be
 * served as a whole; nothing of it was started. Each problem names the file and line or the argument,
 * the device and the key.
 */
public final class ConfigException extends Exception {
    private static final long serialVersionUID = 1L;
    private final List<String> problems;

    public ConfigException(List<String> problems) {
        super(String.join("\n", problems));
        this.problems = List.copyOf(problems);
    }

    public ConfigException(String problem) {
        this(List.of(problem));
    }

    public List<String> problems() {
        return problems;
    }
}
