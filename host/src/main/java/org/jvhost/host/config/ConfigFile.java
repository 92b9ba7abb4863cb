package org.jvhost.host.config;

import java.io.IOException;
import java.nio.charset.MalformedInputException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.jvhost.engine.memory.MemoryBudget;
import org.jvhost.engine.server.Host;
import org.jvhost.host.IoErrors;
import org.jvhost.host.metrics.MetricsServer;

/**
 * The {@code serve --config FILE} format: INI-like text, one {@code [device NAME]} section per device
 * and an optional {@code [host]} section.
 *
 * <pre>
 * # comment (also ';'), on a line of its own
 * [host]
 * workers = 2
 * control = /run/jvhost/control.sock
 * metrics = 127.0.0.1:9109
 *
 * [device vm1-nic0]
 * type = loopback
 * socket = /run/jvhost/vm1-nic0.sock     # NOT a comment: the value runs to the end of the line
 * queues = 2
 * </pre>
 *
 * Each device needs {@code type} and exactly one of {@code socket} (jvhost listens) or {@code connect}
 * (jvhost connects); every other key is the device type's option. Relative paths are relative to the
 * file's directory. Reading collects every syntax problem and every [host] problem, each as
 * {@code FILE:LINE: ...}, and keeps the devices that have none; what the device types make of their keys
 * is checked next ({@link org.jvhost.host.devices.PlannedDevice#plan}), and the two lists are reported together.
 */
public final class ConfigFile {
    /** Far beyond any useful count: workers only copy and signal, and a machine has few CPUs. */
    public static final int MAX_WORKERS = 1024;
    /** One second: longer idle polling only burns CPU; kicks wake the worker within microseconds. */
    public static final int MAX_POLL_MICROS = 1_000_000;
    static final String HOST_WORKERS = "workers";
    static final String HOST_CONTROL = "control";
    static final String HOST_METRICS = "metrics";
    static final String HOST_POLL_US = "poll-us";
    static final String HOST_POLL_MAX_US = "poll-max-us";
    static final String HOST_MAX_GUEST_MEMORY = MemoryBudget.CONNECTION_OPTION;
    static final String HOST_MAX_MAPPED_MEMORY = MemoryBudget.HOST_OPTION;
    public static final String KEY_TYPE = "type";
    private static final Pattern SECTION = Pattern.compile("\\[\\s*(host|device\\s+(\\S+))\\s*]");
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}");
    private static final Pattern KEY = Pattern.compile("[A-Za-z][A-Za-z0-9_.-]*");

    /**
     * The {@code [host]} section; null for a key the file does not set.
     *
     * @param workers worker threads
     * @param control control socket path
     * @param metrics metrics listen address, {@code HOST:PORT}
     * @param maxGuestMemory  bytes of guest memory one connection may map
     * @param maxMappedMemory bytes of guest memory all connections together may map
     */
    public record Settings(Integer workers, Path control, String metrics, Integer pollMicros, Integer pollMaxMicros,
                    Long maxGuestMemory, Long maxMappedMemory) {
        public static final Settings NONE = new Settings(null, null, null, null, null, null, null);
    }

    /**
     * A file read: its settings and devices, and the problems found so far.
     *
     * @param devices  the devices without syntax problems
     * @param problems the syntax and [host] problems, in file order; the file is usable only if empty
     */
    public record Parsed(Path file, Settings host, List<DeviceEntry> devices, List<String> problems) {
    }

    private final Path file;
    private final Path dir;
    private final List<String> problems = new ArrayList<>();
    private final List<DeviceEntry> devices = new ArrayList<>();
    private final Map<String, Integer> deviceLines = new HashMap<>();
    private Settings host = Settings.NONE;
    private int hostLine;

    private ConfigFile(Path file) {
        this.file = file;
        Path parent = file.toAbsolutePath().getParent();
        this.dir = parent == null ? Path.of("/") : parent;
    }

    /**
     * Reads {@code file} and checks its syntax and its [host] section.
     *
     * @throws ConfigException if it cannot be read at all
     */
    public static Parsed read(Path file) throws ConfigException {
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (MalformedInputException e) {
            throw new ConfigException(file + ": not UTF-8 text");
        } catch (IOException e) {
            throw new ConfigException("cannot read config file " + IoErrors.describe(e));
        }
        ConfigFile c = new ConfigFile(file);
        c.parse(lines);
        return new Parsed(file, c.host, List.copyOf(c.devices), List.copyOf(c.problems));
    }

    /** A section being read: its name (null for [host]), header line, keys and their lines. */
    private static final class Section {
        final String device;
        final int line;
        final Map<String, String> values = new LinkedHashMap<>();
        final Map<String, Integer> lines = new HashMap<>();

        Section(String device, int line) {
            this.device = device;
            this.line = line;
        }
    }

    private void parse(List<String> lines) {
        Section section = null;
        for (int i = 0; i < lines.size(); i++) {
            int n = i + 1;
            String line = lines.get(i).strip();
            if (line.isEmpty() || line.startsWith("#") || line.startsWith(";")) {
                continue;
            }
            if (line.startsWith("[")) {
                finish(section);
                section = header(line, n);
                continue;
            }
            int eq = line.indexOf('=');
            String key = eq < 0 ? line : line.substring(0, eq).strip();
            if (eq <= 0 || !KEY.matcher(key).matches()) {
                problems.add(at(n) + "expected key = value, a [section] or a # comment, found '" + line + "'");
                continue;
            }
            if (section == null) {
                problems.add(at(n) + "key '" + key + "' before any [host] or [device NAME] section");
                continue;
            }
            Integer earlier = section.lines.putIfAbsent(key, n);
            if (earlier != null) {
                problems.add(at(n) + in(section) + "key " + key + ": given again (first at line " + earlier + ")");
                continue;
            }
            section.values.put(key, line.substring(eq + 1).strip());
        }
        finish(section);
    }

    private Section header(String line, int n) {
        Matcher m = SECTION.matcher(line);
        if (!m.matches()) {
            problems.add(at(n) + "unknown section " + line + "; expected [host] or [device NAME]");
            return new Section("?", n); // keys until the next section are read but not used
        }
        if (m.group(2) == null) {
            if (hostLine != 0) {
                problems.add(at(n) + "[host] given again (first at line " + hostLine + ")");
            }
            hostLine = n;
            return new Section(null, n);
        }
        String name = m.group(2);
        if (!NAME.matcher(name).matches()) {
            problems.add(at(n) + "device name '" + name + "': use up to 64 letters, digits and _ . : @ -, "
                    + "starting with a letter or digit");
        }
        Integer earlier = deviceLines.putIfAbsent(name, n);
        if (earlier != null) {
            problems.add(at(n) + "device " + name + ": defined again (first at line " + earlier + ")");
        }
        return new Section(name, n);
    }

    private void finish(Section s) {
        if (s == null || "?".equals(s.device)) {
            return;
        }
        if (s.device == null) {
            host = hostSettings(s);
        } else {
            device(s);
        }
    }

    private Settings hostSettings(Section s) {
        Integer workers = null;
        Integer pollMicros = null;
        Integer pollMaxMicros = null;
        Path control = null;
        String metrics = null;
        Long maxGuestMemory = null;
        Long maxMappedMemory = null;
        for (Map.Entry<String, String> e : s.values.entrySet()) {
            String v = e.getValue();
            int n = s.lines.get(e.getKey());
            switch (e.getKey()) {
                case HOST_WORKERS:
                    workers = intIn(v, n, HOST_WORKERS, 1, MAX_WORKERS);
                    break;
                case HOST_POLL_US:
                    pollMicros = intIn(v, n, HOST_POLL_US, 0, MAX_POLL_MICROS);
                    break;
                case HOST_POLL_MAX_US:
                    pollMaxMicros = intIn(v, n, HOST_POLL_MAX_US, 0, MAX_POLL_MICROS);
                    break;
                case HOST_CONTROL:
                    control = path(v, n, "[host] key control: ");
                    break;
                case HOST_METRICS:
                    metrics = metricsAddress(v, n);
                    break;
                case HOST_MAX_GUEST_MEMORY:
                    maxGuestMemory = size(v, n, HOST_MAX_GUEST_MEMORY);
                    break;
                case HOST_MAX_MAPPED_MEMORY:
                    maxMappedMemory = size(v, n, HOST_MAX_MAPPED_MEMORY);
                    break;
                default:
                    problems.add(at(n) + "[host] key " + e.getKey() + ": unknown; [host] accepts "
                            + String.join(", ", HOST_WORKERS, HOST_POLL_US, HOST_POLL_MAX_US, HOST_CONTROL, HOST_METRICS,
                                    HOST_MAX_GUEST_MEMORY, HOST_MAX_MAPPED_MEMORY));
            }
        }
        return new Settings(workers, control, metrics, pollMicros, pollMaxMicros, maxGuestMemory, maxMappedMemory);
    }

    /** A [host] metrics address if it is a loopback {@code HOST:PORT}, or null after recording the problem. */
    private String metricsAddress(String v, int line) {
        try {
            MetricsServer.loopbackAddress(v);
            return v;
        } catch (IllegalArgumentException ex) {
            problems.add(at(line) + "[host] key " + HOST_METRICS + ": " + ex.getMessage());
            return null;
        }
    }

    /** A [host] size ({@link MemoryBudget#parseLimit}), or null after recording the problem. */
    private Long size(String v, int line, String key) {
        try {
            return MemoryBudget.parseLimit(v);
        } catch (IllegalArgumentException ex) {
            problems.add(at(line) + "[host] key " + key + ": " + ex.getMessage());
            return null;
        }
    }

    /** A [host] integer in {@code [min, max]}, or null after recording the problem. */
    private Integer intIn(String v, int line, String key, int min, int max) {
        try {
            int value = Integer.parseInt(v);
            if (value >= min && value <= max) {
                return value;
            }
            problems.add(at(line) + "[host] key " + key + ": " + v + " is not between " + min + " and " + max);
        } catch (NumberFormatException ex) {
            problems.add(at(line) + "[host] key " + key + ": '" + v + "' is not a number");
        }
        return null;
    }

    private void device(Section s) {
        Map<String, String> options = new LinkedHashMap<>(s.values);
        String type = options.remove(KEY_TYPE);
        String socket = options.remove(DeviceSpec.KEY_SOCKET);
        String connect = options.remove(DeviceSpec.KEY_CONNECT);
        int problemsBefore = problems.size();
        if (type == null || type.isEmpty()) {
            problems.add(at(s.line) + in(s) + "key type: missing; every device needs type = TYPE");
        }
        if (socket != null && connect != null) {
            problems.add(at(s.lines.get(DeviceSpec.KEY_CONNECT)) + in(s) + "key connect: give socket = PATH "
                    + "(jvhost listens) or connect = PATH (jvhost connects), not both");
        } else if (socket == null && connect == null) {
            problems.add(at(s.line) + in(s) + "key socket: missing; give socket = PATH (jvhost listens) or "
                    + "connect = PATH (jvhost connects)");
        }
        String pathKey = socket != null ? DeviceSpec.KEY_SOCKET : DeviceSpec.KEY_CONNECT;
        String value = socket != null ? socket : connect;
        Path path = value == null ? null : path(value, s.lines.get(pathKey), in(s) + "key " + pathKey + ": ");
        if (problems.size() > problemsBefore) {
            return;
        }
        String text = file + ":" + s.line + " [device " + s.device + "]";
        DeviceSpec spec = new DeviceSpec(text, type, path, socket != null ? Host.Mode.LISTEN : Host.Mode.CONNECT, options);
        Map<String, Integer> keyLines = Map.copyOf(s.lines);
        String device = s.device;
        int sectionLine = s.line;
        devices.add(new DeviceEntry(device, spec, DeviceEntry.Origin.CONFIG, key -> {
            Integer n = key == null ? null : keyLines.get(key);
            return file + ":" + Objects.requireNonNullElse(n, sectionLine) + ": device " + device
                    + (key == null ? "" : ": key " + key);
        }, dir));
    }

    /** A path value, relative ones resolved against the file's directory; null (and a problem) if unusable. */
    private Path path(String value, int line, String what) {
        String problem = DeviceSpec.pathProblem(value);
        if (problem == null) {
            Path p = dir.resolve(value).normalize();
            problem = DeviceSpec.pathProblem(p.toString());
            if (problem == null) {
                return p;
            }
        }
        problems.add(at(line) + what + problem);
        return null;
    }

    private String at(int line) {
        return file + ":" + line + ": ";
    }

    private static String in(Section s) {
        return "device " + s.device + ": ";
    }
}
