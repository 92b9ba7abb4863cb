package org.jvhost.host.cli;

import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.jvhost.engine.instrument.Instrument;
import org.jvhost.engine.instrument.SpecRule;
import org.jvhost.engine.server.DeviceSnapshot;
import org.jvhost.engine.server.Host;
import org.jvhost.host.config.ConfigException;
import org.jvhost.host.config.DeviceEntry;
import org.jvhost.host.config.DeviceSpec;
import org.jvhost.host.control.ControlServer;
import org.jvhost.host.control.Json;
import org.jvhost.host.devices.DeviceManager;
import org.jvhost.spi.VhostUserDevice;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What the control socket's requests mean. A request is one line: a command and its argument,
 * separated by a space. A response is one line, a JSON object with {@code "ok"}: true with the
 * command's result, or false with {@code "error"} (and, for a refused configuration, {@code "errors"}:
 * every problem).
 *
 * <pre>
 * list                      {"ok":true,"devices":[{"name":..,"type":..,"origin":..,"mode":"listen"|"connect",
 *                             "socket":..,"state":"listening"|"connecting"|"connected","features":"0x..",
 *                             "queues":N,"active_queues":[..],"sessions":N,"error":null|".."}]}
 * counters [NAME]           {"ok":true,"devices":[{"name":..,"counters":{..},"errors":N,
 *                             "queues":[{"index":0,"active":true,"kicks":N,"calls":N,"errors":N,"counters":{..}}]}]}
 * add TYPE:socket=PATH,...  {"ok":true,"added":NAME}
 * remove NAME               {"ok":true,"removed":NAME}
 * reload                    {"ok":true,"added":[..],"removed":[..],"restarted":[..],"unchanged":[..],
 *                             "failed":[..],"warnings":[..]}
 * trace NAME on|off         {"ok":true,"trace":"on"|"off","file":PATH}
 * violations [NAME]         {"ok":true|false,"violations":N,"devices":[{"name":..,"strict":true,"violations":N,
 *                             "rules":{"features_not_offered":N,..}}]}; ok is false once any device in strict
 *                             mode has reported a violation (a front-end's CI fails on it)
 * upgrade                   {"ok":true,"pid":N,"successor":N}: this process started its successor
 *                             ({@link Successor}), which takes over and makes it exit
 * </pre>
 */
final class ControlRequests implements ControlServer.Handler {
    private static final Logger LOG = LoggerFactory.getLogger(ControlRequests.class);
    static final List<String> COMMANDS = List.of("list", "counters", "add", "remove", "reload", "trace", "violations",
            "resize", "upgrade");

    private final DeviceManager devices;

    ControlRequests(DeviceManager devices) {
        this.devices = devices;
    }

    @Override
    public String handle(String request) {
        int space = request.indexOf(' ');
        String command = space < 0 ? request : request.substring(0, space);
        String arg = space < 0 ? "" : request.substring(space + 1).strip();
        try {
            return Json.write(dispatch(command, arg));
        } catch (ConfigException e) {
            return Json.write(refused(e.problems().size() == 1 ? e.getMessage()
                    : e.problems().size() + " problems, nothing was changed", e.problems()));
        } catch (IOException | IllegalArgumentException e) {
            return Json.write(refused(e.getMessage(), List.of()));
        }
    }

    private Map<String, Object> dispatch(String command, String arg) throws ConfigException, IOException {
        switch (command) {
            case "list": noArgument(command, arg); return ok("devices", list());
            case "counters": return ok("devices", counters(arg));
            case "add": return ok("added", add(arg));
            case "remove": return ok("removed", remove(arg));
            case "reload": noArgument(command, arg); return reload();
            case "trace": return trace(arg);
            case "violations": return violations(arg);
            case "resize": return resize(arg);
            case "upgrade": noArgument(command, arg); return upgrade();
            default:
                throw new IllegalArgumentException("unknown command '" + command + "'; commands: "
                        + String.join(", ", COMMANDS));
        }
    }

    private static Map<String, Object> upgrade() throws IOException {
        long successor = Successor.start();
        LOG.info("control: started successor pid {} for a hot upgrade", successor);
        Map<String, Object> r = ok("pid", ProcessHandle.current().pid());
        r.put("successor", successor);
        return r;
    }

    private static void noArgument(String command, String arg) {
        if (!arg.isEmpty()) {
            throw new IllegalArgumentException(command + " takes no argument (given '" + arg + "')");
        }
    }

    private List<Object> list() {
        List<Object> out = new ArrayList<>();
        for (DeviceManager.View v : devices.list()) {
            DeviceSnapshot s = v.snapshot();
            DeviceSpec spec = v.entry().spec();
            boolean listen = spec.mode() == Host.Mode.LISTEN;
            List<Object> active = new ArrayList<>();
            s.queues().stream().filter(DeviceSnapshot.QueueSnapshot::active).forEach(q -> active.add(q.index()));
            Map<String, Object> d = new LinkedHashMap<>();
            d.put("name", v.entry().name());
            d.put("type", spec.type());
            d.put("origin", v.entry().origin().label);
            d.put("mode", listen ? "listen" : "connect");
            d.put("socket", spec.socket().toString());
            d.put("state", s.connected() ? "connected" : listen ? "listening" : "connecting");
            d.put("features", "0x" + Long.toHexString(s.negotiatedFeatures()));
            d.put("queues", s.queues().size());
            d.put("active_queues", active);
            d.put("sessions", s.sessions());
            d.put("error", s.failed() ? "a device callback threw; the device waits for the front-end to reset it"
                    : null);
            out.add(d);
        }
        return out;
    }

    private List<Object> counters(String name) {
        List<DeviceManager.View> views;
        if (name.isEmpty()) {
            views = devices.list();
        } else {
            DeviceManager.View v = devices.view(name);
            if (v == null) {
                throw new IllegalArgumentException("no device named '" + name + "'");
            }
            views = List.of(v);
        }
        List<Object> out = new ArrayList<>();
        for (DeviceManager.View v : views) {
            DeviceSnapshot s = v.snapshot();
            List<Object> queues = new ArrayList<>();
            for (DeviceSnapshot.QueueSnapshot q : s.queues()) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("index", q.index());
                m.put("active", q.active());
                m.put("kicks", q.kicks());
                m.put("calls", q.calls());
                m.put("errors", q.errors());
                m.put("counters", q.counters());
                queues.add(m);
            }
            Map<String, Object> d = new LinkedHashMap<>();
            d.put("name", v.entry().name());
            d.put("counters", s.counters());
            d.put("errors", s.errors());
            d.put("queues", queues);
            out.add(d);
        }
        return out;
    }

    private String add(String text) throws ConfigException, IOException {
        if (text.isEmpty()) {
            throw new IllegalArgumentException("add needs a device: " + DeviceSpec.GRAMMAR);
        }
        DeviceSpec spec = DeviceSpec.parse(text);
        if (!spec.socket().isAbsolute()) {
            // jvhost's working directory means nothing to the client; jvhost ctl sends absolute paths
            throw new IllegalArgumentException("'" + text + "': " + spec.socket() + " is a relative path; give an "
                    + "absolute one (jvhost ctl resolves relative paths in its own working directory)");
        }
        DeviceEntry entry = DeviceEntry.of(spec, DeviceEntry.Origin.CONTROL);
        devices.add(entry);
        LOG.info("{} added through the control socket", entry.name());
        return entry.name();
    }

    private String remove(String name) {
        if (name.isEmpty()) {
            throw new IllegalArgumentException("remove needs a device name (see list)");
        }
        if (!devices.remove(name)) {
            throw new IllegalArgumentException("no device named '" + name + "'");
        }
        return name;
    }

    private Map<String, Object> trace(String arg) throws IOException {
        String[] words = arg.split(" +");
        if (words.length != 2 || !(words[1].equals("on") || words[1].equals("off"))) {
            throw new IllegalArgumentException("trace needs a device name and on or off (given '" + arg + "')");
        }
        Instrument instrument = devices.instrument(words[0]);
        try {
            instrument.setTracing(words[1].equals("on"));
        } catch (IllegalStateException e) {
            throw new IllegalArgumentException(e.getMessage());
        }
        Map<String, Object> m = ok("trace", words[1]);
        if (instrument.trace() != null) {
            m.put("file", instrument.trace().path().toString());
        }
        return m;
    }

    /** {@code resize NAME BYTES}: the device changes its capacity and tells the driver. */
    private Map<String, Object> resize(String arg) {
        String[] words = arg.split(" +");
        long bytes;
        try {
            bytes = words.length == 2 ? Long.parseLong(words[1]) : -1;
        } catch (NumberFormatException e) {
            bytes = -1;
        }
        if (bytes < 0) {
            throw new IllegalArgumentException("resize needs a device name and a size in bytes (given '" + arg + "')");
        }
        VhostUserDevice device = devices.device(words[0]);
        try {
            device.resize(bytes);
        } catch (RuntimeException e) { // the device's refusal, or a broken plugin: the host goes on
            throw new IllegalArgumentException(words[0] + ": resize to " + bytes + " bytes refused: " + e.getMessage());
        }
        LOG.info("{} resized to {} bytes through the control socket", words[0], bytes);
        Map<String, Object> m = ok("resized", words[0]);
        m.put("bytes", bytes);
        return m;
    }

    private Map<String, Object> violations(String name) {
        List<DeviceManager.View> views = name.isEmpty() ? devices.list() : List.of(named(name));
        long total = 0;
        List<Object> out = new ArrayList<>();
        for (DeviceManager.View v : views) {
            Instrument instrument = devices.instrument(v.entry().name());
            Map<String, Object> rules = new LinkedHashMap<>();
            for (SpecRule r : SpecRule.values()) {
                rules.put(r.id(), instrument.violations(r));
            }
            Map<String, Object> d = new LinkedHashMap<>();
            d.put("name", v.entry().name());
            d.put("strict", instrument.strict());
            d.put("violations", instrument.violations());
            d.put("rules", rules);
            out.add(d);
            total += instrument.violations();
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("ok", total == 0);
        if (total > 0) {
            m.put("error", total + " spec violation(s) reported by strict mode (WARN lines name each rule)");
        }
        m.put("violations", total);
        m.put("devices", out);
        return m;
    }

    private DeviceManager.View named(String name) {
        DeviceManager.View v = devices.view(name);
        if (v == null) {
            throw new IllegalArgumentException("no device named '" + name + "'");
        }
        return v;
    }

    private Map<String, Object> reload() throws ConfigException {
        DeviceManager.ReloadResult r;
        try {
            r = devices.reload();
        } catch (ConfigException e) {
            LOG.error("reload refused, nothing was changed:\n  {}", String.join("\n  ", e.problems()));
            throw e;
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("ok", r.failed().isEmpty());
        if (!r.failed().isEmpty()) {
            m.put("error", r.failed().size() + " device(s) could not start");
        }
        m.put("added", r.added());
        m.put("removed", r.removed());
        m.put("restarted", r.restarted());
        m.put("unchanged", r.unchanged());
        m.put("failed", r.failed());
        m.put("warnings", r.warnings());
        return m;
    }

    private static Map<String, Object> ok(String key, Object value) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("ok", true);
        m.put(key, value);
        return m;
    }

    private static Map<String, Object> refused(String error, List<String> problems) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("ok", false);
        m.put("error", error);
        if (!problems.isEmpty()) {
            m.put("errors", problems);
        }
        return m;
    }
}
