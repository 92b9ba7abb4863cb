package org.jvhost.spi;

import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The validated {@code key=value} options of one device: only keys the provider declared, with its
 * defaults filled in. The typed getters turn a bad value into an {@link InvalidOptionException} that
 * names the key, the value and what was expected.
 */
public final class DeviceOptions {
    private final Map<String, String> values;
    /** What a relative path is relative to; null where relative paths are refused. */
    private final Path baseDir;

    /** Options whose relative paths resolve against the working directory. */
    public DeviceOptions(Map<String, String> values) {
        this(values, Path.of("").toAbsolutePath());
    }

    /**
     * Options whose relative paths ({@link #getPath}) resolve against {@code baseDir}: a config file's
     * directory for its devices; null refuses them (the control API cannot know its client's directory).
     *
     * @since SPI 1.3
     */
    public DeviceOptions(Map<String, String> values, Path baseDir) {
        this.values = Collections.unmodifiableMap(new LinkedHashMap<>(values));
        this.baseDir = baseDir;
    }

    /** All options, in the order given. */
    public Map<String, String> asMap() {
        return values;
    }

    /** The raw value, if set. */
    public Optional<String> get(String key) {
        return Optional.ofNullable(values.get(key));
    }

    /** An integer in {@code [min, max]}. */
    public int getInt(String key, int min, int max) throws InvalidOptionException {
        String v = require(key);
        try {
            int n = Integer.parseInt(v.trim());
            if (n < min || n > max) {
                throw new InvalidOptionException(key,
                        key + "=" + v + ": must be between " + min + " and " + max);
            }
            return n;
        } catch (NumberFormatException e) {
            throw new InvalidOptionException(key, key + "=" + v + ": not an integer");
        }
    }

    /** {@code on/off}, {@code true/false}, {@code yes/no} or {@code 1/0}. */
    public boolean getBoolean(String key) throws InvalidOptionException {
        String v = require(key);
        switch (v.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "on": case "true": case "yes": case "1":
                return true;
            case "off": case "false": case "no": case "0":
                return false;
            default:
                throw new InvalidOptionException(key, key + "=" + v + ": expected on or off");
        }
    }

    /** A MAC address written as six colon-separated hex bytes, e.g. {@code 52:54:00:12:34:56}. */
    public byte[] getMac(String key) throws InvalidOptionException {
        String v = require(key);
        String[] parts = v.trim().split(":");
        if (parts.length != 6) {
            throw new InvalidOptionException(key, key + "=" + v + ": expected a MAC like 52:54:00:12:34:56");
        }
        byte[] mac = new byte[6];
        for (int i = 0; i < 6; i++) {
            if (parts[i].length() != 2) {
                throw new InvalidOptionException(key, key + "=" + v + ": expected a MAC like 52:54:00:12:34:56");
            }
            try {
                mac[i] = (byte) Integer.parseInt(parts[i], 16);
            } catch (NumberFormatException e) {
                throw new InvalidOptionException(key, key + "=" + v + ": '" + parts[i] + "' is not a hex byte");
            }
        }
        if ((mac[0] & 1) != 0) {
            throw new InvalidOptionException(key, key + "=" + v + ": a multicast address cannot be a NIC's MAC");
        }
        return mac;
    }

    /**
     * A file system path, absolute: a relative one resolves against the directory the device was declared
     * in (a config file's, or jvhost's working directory for {@code --device}), as the socket path does.
     *
     * @throws InvalidOptionException if it is not a path, or is relative where that is refused
     * @since SPI 1.3
     */
    public Path getPath(String key) throws InvalidOptionException {
        String v = require(key);
        Path p;
        try {
            p = Path.of(v.trim());
        } catch (InvalidPathException e) {
            throw new InvalidOptionException(key, key + "=" + v + ": not a path (" + e.getReason() + ")");
        }
        if (p.isAbsolute()) {
            return p.normalize();
        }
        if (baseDir == null) {
            throw new InvalidOptionException(key, key + "=" + v + ": a relative path; give an absolute one");
        }
        return baseDir.resolve(p).normalize();
    }

    private String require(String key) throws InvalidOptionException {
        String v = values.get(key);
        if (v == null) {
            throw new InvalidOptionException(key, "option '" + key + "' is required");
        }
        return v;
    }

    @Override
    public String toString() {
        return values.toString();
    }
}
