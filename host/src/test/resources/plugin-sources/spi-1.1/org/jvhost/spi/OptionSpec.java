package org.jvhost.spi;

import java.util.Objects;

/**
 * One option a device type accepts.
 *
 * @param name         the key, as in {@code key=value}
 * @param description  what it means, one line
 * @param defaultValue the value when the user gives none, or null if the option is unset by default
 */
public record OptionSpec(String name, String description, String defaultValue) {
    public OptionSpec {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(description, "description");
    }
}
