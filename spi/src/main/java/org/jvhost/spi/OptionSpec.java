package org.jvhost.spi;

import java.util.Objects;

/**
 * One option a device type accepts.
 *
 * @param name         the key, as in {@code key=value}
 * @param description  what it means, one line
 * @param defaultValue the value when the user gives none, or null if the option is unset by default
 * @param kind         what the value is: {@link Kind#PATH} values are resolved by the host (since SPI 1.4)
 * @param required     the host refuses a device declared without it, naming the option (since SPI 1.4)
 */
public record OptionSpec(String name, String description, String defaultValue, Kind kind, boolean required) {

    /**
     * What an option's value is, as far as the host handles it.
     *
     * @since SPI 1.4
     */
    public enum Kind {
        /** Passed to the device as written. */
        TEXT,
        /**
         * A file system path. The host makes a relative one absolute before the device sees it: against
         * the config file's directory for a device declared there, jvhost's working directory for
         * {@code --device}; the control API, which cannot know its client's directory, refuses it.
         */
        PATH
    }

    public OptionSpec {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(description, "description");
        Objects.requireNonNull(kind, "kind");
        if (required && defaultValue != null) {
            throw new IllegalArgumentException("option " + name + ": a required option has no default");
        }
    }

    /** An optional text option: the shape of SPI 1.0 to 1.3, which plugins built against them call. */
    public OptionSpec(String name, String description, String defaultValue) {
        this(name, description, defaultValue, Kind.TEXT, false);
    }

    /**
     * A required option without default.
     *
     * @since SPI 1.4
     */
    public static OptionSpec required(String name, String description) {
        return new OptionSpec(name, description, null, Kind.TEXT, true);
    }

    /**
     * This option, holding a {@linkplain Kind#PATH path}.
     *
     * @since SPI 1.4
     */
    public OptionSpec asPath() {
        return new OptionSpec(name, description, defaultValue, Kind.PATH, required);
    }
}
