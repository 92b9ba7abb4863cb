package org.jvhost.host.cli;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import org.jvhost.engine.server.Host;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.DeviceProvider;
import org.jvhost.spi.OptionSpec;

/**
 * One {@code --device} argument: {@code TYPE:socket=PATH[,key=value...]} or
 * {@code TYPE:connect=PATH[,key=value...]}. {@code socket} makes jvhost listen on PATH (the front-end
 * connects); {@code connect} makes jvhost connect to a front-end listening on PATH. Every other key is
 * the device type's. Values cannot contain commas.
 *
 * @param text    the argument as given, for messages
 * @param type    the device type name
 * @param socket  the Unix socket path
 * @param mode    who listens
 * @param options the device's own {@code key=value} pairs, in the order given
 */
public record DeviceSpec(String text, String type, Path socket, Host.Mode mode, Map<String, String> options) {

    /** The grammar, for messages and help. */
    public static final String GRAMMAR = "TYPE:socket=PATH[,key=value...] or TYPE:connect=PATH[,key=value...]";

    static final String KEY_SOCKET = "socket";
    static final String KEY_CONNECT = "connect";

    /** sun_path holds 108 bytes including the terminating NUL (unix(7)). */
    static final int MAX_SOCKET_PATH_BYTES = 107;

    public DeviceSpec {
        options = Collections.unmodifiableMap(new LinkedHashMap<>(options));
    }

    /**
     * Parses one {@code --device} argument.
     *
     * @throws IllegalArgumentException saying what in {@code text} breaks the grammar
     */
    public static DeviceSpec parse(String text) {
        int colon = text.indexOf(':');
        if (colon <= 0) {
            throw new IllegalArgumentException("'" + text + "': expected " + GRAMMAR);
        }
        String type = text.substring(0, colon);
        Map<String, String> pairs = keyValues(text, text.substring(colon + 1));
        String socket = pairs.remove(KEY_SOCKET);
        String connect = pairs.remove(KEY_CONNECT);
        if (socket != null && connect != null) {
            throw new IllegalArgumentException("'" + text + "': give socket=PATH (jvhost listens) or "
                    + "connect=PATH (jvhost connects), not both");
        }
        if (socket == null && connect == null) {
            throw new IllegalArgumentException("'" + text + "': missing socket=PATH (or connect=PATH)");
        }
        String path = socket != null ? socket : connect;
        checkPath(text, path);
        return new DeviceSpec(text, type, Path.of(path), socket != null ? Host.Mode.LISTEN : Host.Mode.CONNECT, pairs);
    }

    private static Map<String, String> keyValues(String text, String list) {
        Map<String, String> pairs = new LinkedHashMap<>();
        if (list.isEmpty()) {
            return pairs;
        }
        for (String item : list.split(",", -1)) {
            int eq = item.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("'" + text + "': '" + item + "' is not key=value");
            }
            String key = item.substring(0, eq);
            if (pairs.put(key, item.substring(eq + 1)) != null) {
                throw new IllegalArgumentException("'" + text + "': key '" + key + "' given twice");
            }
        }
        return pairs;
    }

    private static void checkPath(String text, String path) {
        String problem = pathProblem(path);
        if (problem != null) {
            throw new IllegalArgumentException("'" + text + "': " + problem);
        }
    }

    /** What makes {@code path} unusable as a Unix socket path, or null if nothing does. */
    static String pathProblem(String path) {
        if (path.isEmpty()) {
            return "empty socket path";
        }
        if (path.indexOf('\0') >= 0) {
            return "socket path contains a NUL byte";
        }
        int bytes = path.getBytes(StandardCharsets.UTF_8).length;
        if (bytes > MAX_SOCKET_PATH_BYTES) {
            return "socket path is " + bytes + " bytes; Unix socket paths are limited to " + MAX_SOCKET_PATH_BYTES;
        }
        return null;
    }

    /** The device's name in logs: {@code TYPE@PATH}. */
    public String deviceName() {
        return type + "@" + socket;
    }

    /**
     * The options for {@code provider}: the ones given, with the provider's defaults for the rest.
     *
     * @throws IllegalArgumentException naming the key, the value and the accepted keys if a key is not
     *                                  one the provider declared
     */
    public DeviceOptions resolveOptions(DeviceProvider provider) {
        Map<String, String> resolved = new LinkedHashMap<>();
        for (OptionSpec spec : provider.options()) {
            if (spec.defaultValue() != null) {
                resolved.put(spec.name(), spec.defaultValue());
            }
        }
        for (Map.Entry<String, String> given : options.entrySet()) {
            if (provider.options().stream().noneMatch(o -> o.name().equals(given.getKey()))) {
                throw new IllegalArgumentException("'" + text + "': device type " + type + " has no option '"
                        + given.getKey() + "' (given " + given.getKey() + "=" + given.getValue() + "); it accepts: "
                        + acceptedKeys(provider));
            }
            resolved.put(given.getKey(), given.getValue());
        }
        return new DeviceOptions(resolved);
    }

    private static String acceptedKeys(DeviceProvider provider) {
        StringBuilder s = new StringBuilder(KEY_SOCKET + ", " + KEY_CONNECT);
        for (OptionSpec o : provider.options()) {
            s.append(", ").append(o.name());
        }
        return s.toString();
    }
}
