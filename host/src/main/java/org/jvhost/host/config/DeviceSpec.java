package org.jvhost.host.config;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.jvhost.engine.server.Host;
import org.jvhost.engine.server.SocketAccess;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.OptionSpec;

/**
 * One {@code --device} argument: {@code TYPE:socket=PATH[,key=value...]} or
 * {@code TYPE:connect=PATH[,key=value...]}. {@code socket} makes jvhost listen on PATH (the front-end
 * connects); {@code connect} makes jvhost connect to a front-end listening on PATH. Every other key is
 * the device type's, except the host's socket keys: {@code socket-mode=0660} and
 * {@code socket-group=NAME} (for a socket jvhost creates) and {@code allow-uid=UID[:UID...]} (front-end
 * uids accepted), and the instrument keys: {@code trace}, {@code trace-format}, {@code trace-max-bytes},
 * {@code strict} and the {@code fault-*} keys ({@link InstrumentOptions}). Values cannot contain commas.
 *
 * @param text    the argument as given, for messages
 * @param type    the device type name
 * @param socket  the Unix socket path; null for a device that takes {@code serve --socket-path} or
 *                {@code --fd} (parsed with {@link #parse(String, boolean)})
 * @param mode    who listens
 * @param options the {@code key=value} pairs other than socket/connect, in the order given (the
 *                host's socket keys included; {@link #resolveOptions} leaves them out)
 */
public record DeviceSpec(String text, String type, Path socket, Host.Mode mode, Map<String, String> options) {

    /** The grammar, for messages and help. */
    public static final String GRAMMAR = "TYPE:socket=PATH[,key=value...] or TYPE:connect=PATH[,key=value...]";

    public static final String KEY_SOCKET = "socket";
    public static final String KEY_CONNECT = "connect";
    public static final String KEY_SOCKET_MODE = "socket-mode";
    public static final String KEY_SOCKET_GROUP = "socket-group";
    public static final String KEY_ALLOW_UID = "allow-uid";
    /** Keys the host handles itself (socket access, and the {@link InstrumentOptions}); never passed to the device type. */
    public static final Set<String> HOST_KEYS = Stream.concat(Stream.of(KEY_SOCKET_MODE, KEY_SOCKET_GROUP, KEY_ALLOW_UID),
            InstrumentOptions.KEYS.stream()).collect(Collectors.toUnmodifiableSet());

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
        return parse(text, false);
    }

    /**
     * Parses one {@code --device} argument; with {@code socketOptional} a device may leave out
     * socket=/connect= (then also written as just {@code TYPE}): its socket comes from
     * {@code serve --socket-path} or {@code --fd}, and {@link #socket()} is null until
     * {@link #withSocket} fills it in.
     *
     * @throws IllegalArgumentException saying what in {@code text} breaks the grammar
     */
    public static DeviceSpec parse(String text, boolean socketOptional) {
        int colon = text.indexOf(':');
        if (colon == 0 || (colon < 0 && (!socketOptional || text.isEmpty()))) {
            throw new IllegalArgumentException("'" + text + "': expected " + GRAMMAR);
        }
        String type = colon < 0 ? text : text.substring(0, colon);
        Map<String, String> pairs = colon < 0 ? new LinkedHashMap<>() : keyValues(text, text.substring(colon + 1));
        String socket = pairs.remove(KEY_SOCKET);
        String connect = pairs.remove(KEY_CONNECT);
        if (socket != null && connect != null) {
            throw new IllegalArgumentException("'" + text + "': give socket=PATH (jvhost listens) or "
                    + "connect=PATH (jvhost connects), not both");
        }
        if (socket == null && connect == null && !socketOptional) {
            throw new IllegalArgumentException("'" + text + "': missing socket=PATH (or connect=PATH)");
        }
        if (connect != null) {
            for (String key : new String[] {KEY_SOCKET_MODE, KEY_SOCKET_GROUP}) {
                if (pairs.containsKey(key)) {
                    throw new IllegalArgumentException("'" + text + "': " + key + " applies to a socket jvhost "
                            + "creates (socket=PATH), not to the front-end's (connect=PATH)");
                }
            }
        }
        String path = socket != null ? socket : connect;
        if (path != null) {
            checkPath(text, path);
        }
        DeviceSpec spec = new DeviceSpec(text, type, path == null ? null : Path.of(path),
                connect != null ? Host.Mode.CONNECT : Host.Mode.LISTEN, pairs);
        spec.socketAccess(Set.of()); // the socket keys' syntax, checked now
        InstrumentOptions.of(spec); // and the instrument keys'
        return spec;
    }

    /** This device with the listening socket {@code path} from {@code serve --socket-path}. */
    public DeviceSpec withSocket(Path path) {
        checkPath(text, path.toString());
        return new DeviceSpec(text, type, path, Host.Mode.LISTEN, options);
    }

    /**
     * Who may reach this device's socket: its socket-mode, socket-group and allow-uid keys, with
     * {@code defaultUids} ({@code serve --allow-uid}) for a device without allow-uid.
     *
     * @throws IllegalArgumentException naming the device, the key and the value if one is malformed
     */
    public SocketAccess socketAccess(Set<Integer> defaultUids) {
        if (mode == Host.Mode.CONNECT) {
            for (String key : new String[] {KEY_SOCKET_MODE, KEY_SOCKET_GROUP}) {
                if (options.containsKey(key)) {
                    throw new IllegalArgumentException("'" + text + "': " + key + " applies to a socket jvhost "
                            + "creates (socket=PATH), not to the front-end's (connect=PATH)");
                }
            }
        }
        int fileMode = SocketAccess.DEFAULT_MODE;
        String modeText = options.get(KEY_SOCKET_MODE);
        if (modeText != null) {
            if (!modeText.matches("0?[0-7]{3}")) {
                throw new IllegalArgumentException("'" + text + "': " + KEY_SOCKET_MODE + "=" + modeText
                        + " is not an octal file mode such as 0600 or 0660");
            }
            fileMode = Integer.parseInt(modeText, 8);
        }
        String group = options.get(KEY_SOCKET_GROUP);
        if (group != null && group.isEmpty()) {
            throw new IllegalArgumentException("'" + text + "': " + KEY_SOCKET_GROUP + "= needs a group name");
        }
        Set<Integer> uids = defaultUids;
        String uidText = options.get(KEY_ALLOW_UID);
        if (uidText != null) {
            uids = new LinkedHashSet<>();
            for (String u : uidText.split(":", -1)) {
                try {
                    int uid = Integer.parseInt(u);
                    if (uid < 0) {
                        throw new NumberFormatException();
                    }
                    uids.add(uid);
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("'" + text + "': " + KEY_ALLOW_UID + "=" + uidText + ": '" + u
                            + "' is not a uid (write allow-uid=UID or UID:UID:...)");
                }
            }
        }
        return new SocketAccess(fileMode, group, uids);
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
        return type + "@" + (socket == null ? "inherited-fd" : socket);
    }

    /**
     * The options for a device type that declares {@code declared}: the ones given, with the declared
     * defaults for the rest; relative path options resolve against {@code baseDir} (null refuses them).
     *
     * @throws IllegalArgumentException naming the key, the value and the accepted keys if a key is not
     *                                  one the type declared
     */
    public DeviceOptions resolveOptions(List<OptionSpec> declared, Path baseDir) {
        Map<String, String> resolved = new LinkedHashMap<>();
        for (OptionSpec spec : declared) {
            if (spec.defaultValue() != null) {
                resolved.put(spec.name(), spec.defaultValue());
            }
        }
        for (Map.Entry<String, String> given : options.entrySet()) {
            if (HOST_KEYS.contains(given.getKey())) {
                continue; // the host's, see socketAccess
            }
            if (declared.stream().noneMatch(o -> o.name().equals(given.getKey()))) {
                throw new IllegalArgumentException("'" + text + "': device type " + type + " has no option '"
                        + given.getKey() + "' (given " + given.getKey() + "=" + given.getValue() + "); it accepts: "
                        + acceptedKeys(declared));
            }
            resolved.put(given.getKey(), given.getValue());
        }
        for (OptionSpec spec : declared) {
            String value = resolved.get(spec.name());
            if (value == null && spec.required()) {
                throw new IllegalArgumentException("'" + text + "': device type " + type + " needs option '"
                        + spec.name() + "' (" + spec.description() + ")");
            }
            if (value != null && spec.kind() == OptionSpec.Kind.PATH) {
                resolved.put(spec.name(), absolutePath(spec.name(), value, baseDir));
            }
        }
        return new DeviceOptions(resolved, baseDir);
    }

    /** A path option's value made absolute against {@code baseDir}; relative ones are refused if it is null. */
    private String absolutePath(String key, String value, Path baseDir) {
        Path p;
        try {
            p = Path.of(value);
        } catch (java.nio.file.InvalidPathException e) {
            throw new IllegalArgumentException("'" + text + "': " + key + "=" + value + " is not a path ("
                    + e.getReason() + ")");
        }
        if (p.isAbsolute()) {
            return p.normalize().toString();
        }
        if (baseDir == null) {
            throw new IllegalArgumentException("'" + text + "': " + key + "=" + value
                    + " is a relative path; give an absolute one");
        }
        return baseDir.resolve(p).normalize().toString();
    }

    private static String acceptedKeys(List<OptionSpec> declared) {
        StringBuilder s = new StringBuilder(KEY_SOCKET + ", " + KEY_CONNECT + ", " + KEY_SOCKET_MODE + ", "
                + KEY_SOCKET_GROUP + ", " + KEY_ALLOW_UID + ", " + String.join(", ", InstrumentOptions.KEYS));
        for (OptionSpec o : declared) {
            s.append(", ").append(o.name());
        }
        return s.toString();
    }
}
