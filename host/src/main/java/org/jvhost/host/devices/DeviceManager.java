package org.jvhost.host.devices;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.jvhost.engine.instrument.Instrument;
import org.jvhost.engine.server.DeviceSnapshot;
import org.jvhost.engine.server.SocketAccess;
import org.jvhost.host.config.ConfigException;
import org.jvhost.host.config.ConfigFile;
import org.jvhost.host.config.DeviceEntry;
import org.jvhost.host.config.DeviceSpec;
import org.jvhost.host.config.InstrumentOptions;
import org.jvhost.host.plugin.DeviceTypes;
import org.jvhost.host.plugin.DeviceTypes.DeviceType;
import org.jvhost.host.plugin.PluginException;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.InvalidOptionException;
import org.jvhost.spi.VhostUserDevice;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The set of devices a running host serves, and every change to it: the start-up set, devices added
 * and removed through the control API, and config reloads. Every change is checked as a whole before
 * anything starts or stops: types, option keys, unique names and socket paths, then each provider's
 * {@code create} (which judges the values); a change with any problem changes nothing and reports all
 * of them. Changes are serialized; reading the set ({@link #list()}) never waits for one.
 *
 * <p>Plugin code called from here is contained: a provider's {@code create} that throws anything or
 * returns null is a problem of the change (naming the provider class and the plugin's file), and a
 * device that throws while it is served, read or closed fails alone; the set stays as it was.
 */
public final class DeviceManager implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(DeviceManager.class);

    /** A device the host serves. */
    record Running(DeviceEntry entry, DeviceType type, DeviceContext context, VhostUserDevice device) {
    }

    /** A running device and its state now (for list, counters and metrics). */
    public record View(DeviceEntry entry, DeviceSnapshot snapshot) {
    }

    /** What a reload did; {@code failed} holds devices that passed the checks but could not start. */
    public record ReloadResult(List<String> added, List<String> removed, List<String> restarted, List<String> unchanged,
                        List<String> failed, List<String> warnings) {
    }

    private final DeviceHost host;
    private final DeviceTypes types;
    private final Path configFile;
    private ConfigFile.Settings settings;
    private final Set<Integer> defaultUids;
    private final Integer inheritedFd;
    private final Map<String, Running> running = new LinkedHashMap<>();
    /** An immutable copy of {@link #running}'s values, for readers that must not wait for a change. */
    private volatile List<Running> published = List.of();

    /**
     * @param configFile the file {@link #reload()} reads, or null if the host was started without one
     * @param settings   the file's [host] section at start (a reload warns when it changes)
     */
    public DeviceManager(DeviceHost host, DeviceTypes types, Path configFile, ConfigFile.Settings settings) {
        this(host, types, configFile, settings, Set.of(), null);
    }

    /**
     * @param defaultUids    {@code serve --allow-uid}: the front-end uids a device without allow-uid accepts
     * @param inheritedFd    {@code serve --fd}: the listening socket of the one device without a socket
     *                       path, or null
     */
    public DeviceManager(DeviceHost host, DeviceTypes types, Path configFile, ConfigFile.Settings settings,
            Set<Integer> defaultUids, Integer inheritedFd) {
        this.host = host;
        this.types = types;
        this.configFile = configFile;
        this.settings = settings;
        this.defaultUids = Set.copyOf(defaultUids);
        this.inheritedFd = inheritedFd;
    }

    /** The entries of the running devices, in order. */
    private List<DeviceEntry> runningEntries() {
        List<DeviceEntry> entries = new ArrayList<>();
        running.values().forEach(r -> entries.add(r.entry()));
        return entries;
    }

    /**
     * Creates a device for every planned entry (nothing is served yet), also when the plan already has
     * problems, so that the values are judged in the same pass.
     *
     * @throws ConfigException listing the plan's problems, every value a provider refused and every
     *                         provider that failed (threw, or returned no device); the devices created are closed
     */
    private List<Running> create(PlannedDevice.Plan plan) throws ConfigException {
        List<Running> created = new ArrayList<>();
        List<String> problems = new ArrayList<>(plan.problems());
        for (PlannedDevice p : plan.devices()) {
            DeviceEntry e = p.entry();
            DeviceContext ctx = host.newContext(e.name());
            try {
                created.add(new Running(e, p.type(), ctx, p.type().create(p.options(), ctx)));
            } catch (InvalidOptionException ex) {
                problems.add(e.problem(ex.key(), ex.getMessage()));
            } catch (PluginException ex) {
                LOG.debug("{}: the provider's stack trace", e.name(), ex.getCause());
                problems.add(e.problem(null, ex.getMessage()));
            }
        }
        for (Running r : problems.isEmpty() ? created : List.<Running>of()) {
            try {
                if (InstrumentOptions.given(r.entry().spec())) {
                    InstrumentOptions.of(r.entry().spec()).applyTo(host.instrument(r.context()));
                }
            } catch (IOException ex) {
                problems.add(r.entry().problem(InstrumentOptions.KEY_TRACE, ex.getMessage()));
            }
        }
        if (!problems.isEmpty()) {
            created.forEach(this::closeQuietly);
            throw new ConfigException(problems);
        }
        return created;
    }

    /**
     * Serves a created device.
     *
     * @throws IOException if its socket cannot be served, or if the device threw while the host took
     *                     it on (the host asks it for its queue count, for example)
     */
    private void serve(Running r) throws IOException {
        try {
            addToHost(r);
        } catch (RuntimeException | Error e) { // plugin code: see the class comment
            LOG.debug("{}: the device's stack trace", r.entry().name(), e);
            throw new IOException(r.entry().name() + ": the device (" + r.type().source() + ") failed while being added: "
                    + e, e);
        }
    }

    private void addToHost(Running r) throws IOException {
        DeviceSpec spec = r.entry().spec();
        SocketAccess access = spec.socketAccess(defaultUids);
        if (spec.socket() == null) {
            // the one device given without a socket path: serve --fd (serve --socket-path fills the path in)
            if (inheritedFd == null) {
                throw new IOException(r.entry().name() + ": no socket path and no inherited socket (--fd)");
            }
            host.addDevice(r.context(), r.device(), inheritedFd, access);
            running.put(r.entry().name(), r);
            publish();
            LOG.info("{} ready: listening on inherited fd {}{}", r.entry().name(), inheritedFd, describe(spec, r));
            return;
        }
        host.addDevice(r.context(), r.device(), spec.socket(), spec.mode(), access);
        running.put(r.entry().name(), r);
        publish();
        LOG.info("{} ready: {} {}{}", r.entry().name(),
                spec.mode() == org.jvhost.engine.server.Host.Mode.LISTEN ? "listening on" : "connecting to",
                spec.socket(), describe(spec, r));
    }

    private static String describe(DeviceSpec spec, Running r) {
        StringBuilder s = new StringBuilder(" (type ").append(spec.type());
        spec.options().forEach((k, v) -> s.append(", ").append(k).append('=').append(v));
        return s.append(')').toString();
    }

    private void publish() {
        published = List.copyOf(running.values());
    }

    /**
     * The start-up set: checked as a whole, created, then served one after the other.
     *
     * @throws ConfigException listing the plan's problems and every value a provider refused (nothing was
     *                         started)
     * @throws IOException     if a device cannot be served (its socket); the ones started before stay
     *                         and the caller closes the host
     */
    public synchronized void start(PlannedDevice.Plan plan) throws ConfigException, IOException {
        for (Running r : create(plan)) {
            try {
                serve(r);
            } catch (IOException e) {
                closeQuietly(r);
                throw e;
            }
        }
    }

    /**
     * Adds one device at run time.
     *
     * @throws ConfigException naming the problem (type, key, value, name or socket taken)
     * @throws IOException     if it cannot be served (its socket)
     */
    public synchronized void add(DeviceEntry entry) throws ConfigException, IOException {
        List<Running> created = create(PlannedDevice.plan(List.of(entry), runningEntries(), types, List.of()));
        try {
            serve(created.get(0));
        } catch (IOException e) {
            closeQuietly(created.get(0));
            throw e;
        }
    }

    /**
     * Removes a running device: stops its rings, closes its connection and socket, removes its socket file.
     *
     * @return false if no device has that name
     */
    public synchronized boolean remove(String name) {
        Running r = running.remove(name);
        if (r == null) {
            return false;
        }
        publish();
        host.removeDevice(r.context());
        LOG.info("{} removed", name);
        return true;
    }

    /** Whether {@link #reload()} has a file to read. */
    boolean hasConfigFile() {
        return configFile != null;
    }

    /**
     * Re-reads the config file and applies the difference to the devices it declared: devices new in
     * the file start, devices gone from it stop, changed ones restart, unchanged ones keep running and
     * keep their connections. Devices added through the control API (or the command line) are left
     * alone. The new file is checked as a whole first (and changed devices are created before their
     * old instance stops): any problem changes nothing.
     *
     * @throws ConfigException listing every problem of the file, or saying there is no file
     */
    public synchronized ReloadResult reload() throws ConfigException {
        if (configFile == null) {
            throw new ConfigException("no config file to reload: serve was started without --config");
        }
        ConfigFile.Parsed parsed = ConfigFile.read(configFile);
        Map<String, DeviceEntry> wanted = new LinkedHashMap<>();
        parsed.devices().forEach(d -> wanted.put(d.name(), d));
        List<String> removed = new ArrayList<>();
        List<String> restarted = new ArrayList<>();
        List<String> unchanged = new ArrayList<>();
        List<DeviceEntry> kept = new ArrayList<>();
        List<DeviceEntry> toStart = new ArrayList<>();
        for (Running r : running.values()) {
            DeviceEntry now = r.entry();
            DeviceEntry next = now.origin() == DeviceEntry.Origin.CONFIG ? wanted.get(now.name()) : null;
            if (now.origin() != DeviceEntry.Origin.CONFIG) {
                kept.add(now);
            } else if (next == null) {
                removed.add(now.name());
            } else if (next.sameDevice(now)) {
                unchanged.add(now.name());
                kept.add(now);
            } else {
                restarted.add(now.name());
                toStart.add(next);
            }
        }
        List<String> added = new ArrayList<>();
        for (DeviceEntry d : wanted.values()) {
            if (!unchanged.contains(d.name()) && !restarted.contains(d.name())) {
                added.add(d.name());
                toStart.add(d);
            }
        }
        List<Running> created = create(PlannedDevice.plan(toStart, kept, types, parsed.problems()));
        // the whole file is good: apply it
        List<String> warnings = new ArrayList<>();
        if (!parsed.host().equals(settings)) {
            warnings.add(configFile + ": [host] changed; workers, control and metrics take effect at the next start");
        }
        warnings.forEach(w -> LOG.warn("reload: {}", w)); // for SIGHUP too, which has no client to tell
        for (String name : removed) {
            remove(name);
        }
        for (String name : restarted) {
            remove(name);
        }
        List<String> failed = new ArrayList<>();
        for (Running r : created) {
            try {
                serve(r);
            } catch (IOException e) {
                closeQuietly(r);
                failed.add(r.entry().problem(null, e.getMessage()));
                LOG.error("reload: {}", r.entry().problem(null, e.getMessage()));
            }
        }
        added.removeIf(n -> !running.containsKey(n));
        restarted.removeIf(n -> !running.containsKey(n));
        LOG.info("reloaded {}: added {}, removed {}, restarted {}, unchanged {}{}", configFile, added, removed,
                restarted, unchanged, failed.isEmpty() ? "" : ", failed to start " + failed.size());
        return new ReloadResult(added, removed, restarted, unchanged, failed, warnings);
    }

    /**
     * The running devices and their state now, in the order they were added. Never waits for a change.
     * A device whose state cannot be read (plugin code threw while the engine read it) is left out, with a
     * WARN line; a {@code counters()} that throws costs only the device's own counters (DeviceSnapshot).
     */
    public List<View> list() {
        List<View> views = new ArrayList<>();
        for (Running r : published) {
            DeviceSnapshot s = snapshot(r);
            if (s != null) {
                views.add(new View(r.entry(), s));
            }
        }
        return views;
    }

    private DeviceSnapshot snapshot(Running r) {
        try {
            return host.snapshot(r.context());
        } catch (RuntimeException | Error e) { // plugin code: see the class comment
            LOG.warn("{}: left out of list, counters and metrics: reading its state ({}) failed: {}", r.entry().name(),
                    r.type().source(), e.toString());
            return null;
        }
    }

    /**
     * The protocol trace and strict mode of the running device {@code name}.
     *
     * @throws IllegalArgumentException if no device has that name
     */
    public Instrument instrument(String name) {
        for (Running r : published) {
            if (r.entry().name().equals(name)) {
                return host.instrument(r.context());
            }
        }
        throw new IllegalArgumentException("no device named '" + name + "'");
    }

    /** The running device named {@code name} (for a request the device itself answers, as resize). */
    public VhostUserDevice device(String name) {
        for (Running r : published) {
            if (r.entry().name().equals(name)) {
                return r.device();
            }
        }
        throw new IllegalArgumentException("no device named '" + name + "'");
    }

    /** One running device's view, or null. */
    public View view(String name) {
        for (View v : list()) {
            if (v.entry().name().equals(name)) {
                return v;
            }
        }
        return null;
    }

    /** Closes a device that is not served (and its trace file, if it has one). */
    private void closeQuietly(Running r) {
        if (InstrumentOptions.given(r.entry().spec())) {
            host.instrument(r.context()).close();
        }
        try {
            r.device().close();
        } catch (RuntimeException | Error e) { // plugin code: see the class comment
            LOG.warn("{}: closing the device failed", r.entry().name(), e);
        }
    }

    /** Forgets the devices; the host's own close stops them. */
    @Override
    public synchronized void close() {
        running.clear();
        publish();
    }
}
