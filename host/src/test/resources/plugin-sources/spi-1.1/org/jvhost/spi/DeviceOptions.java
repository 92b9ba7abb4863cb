package org.jvhost.spi;

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

    public DeviceOptions(Map<String, String> values) {
        this.values = Collections.unmodifiableMap(new LinkedHashMap<>(values));
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
