package org.jvhost.host.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.jvhost.host.config.DeviceSpec;
import org.jvhost.host.control.ControlClient;
import org.jvhost.host.control.Json;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code jvhost ctl}: one request to a running {@code serve --control PATH}, its answer printed for
 * people (or as the raw JSON line with {@code --json}). Exit status 0 if the request succeeded, 1 if it
 * was refused or the socket did not answer, 2 for a usage error.
 */
@Command(name = "ctl", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = {"Talk to a running 'jvhost serve --control PATH'.",
            "Commands: list | counters [NAME] | top [NAME] | add TYPE:socket=PATH[,key=value...] | remove NAME | reload"
                + " | trace NAME on|off | violations [NAME] (exit status 1 once strict mode reported a violation)"
                + " | resize NAME SIZE (a device with a capacity, e.g. a disk)"
                + " | upgrade (serve starts its successor, which takes over without a reconnect: a hot upgrade)"})
final class CtlCommand implements Callable<Integer> {

    /** How long {@code upgrade} waits for the handover (1,000 devices take a few seconds). */
    static final long UPGRADE_MS = 90_000;

    @Spec
    CommandSpec spec;

    @Option(names = "--control", paramLabel = "PATH", description = "The control socket of serve (default: $"
            + DefaultControl.ENV + ", else /run/jvhost/control.sock).")
    Path control;

    /** The environment behind the default control socket; tests replace it. */
    Map<String, String> env = System.getenv();

    @Mixin
    LogOption logLevel;

    @Option(names = "--json", description = "Print the response as the server sent it: one JSON object.")
    boolean json;

    @Option(names = "--interval", paramLabel = "SECONDS", defaultValue = "1",
            description = "top: seconds between screens (default: ${DEFAULT-VALUE}).")
    double interval;

    @Option(names = "--count", paramLabel = "N", defaultValue = "0",
            description = "top: stop after N screens (default: until interrupted).")
    int count;

    @Parameters(index = "0", paramLabel = "COMMAND",
            description = "list, counters, top, add, remove, reload, trace, violations, resize or upgrade.")
    String command;

    @Parameters(index = "1..*", paramLabel = "ARG", description = "counters, top: a device name (optional); "
            + "add: a device spec; remove: a device name; trace: a device name and on or off; "
            + "violations: a device name (optional); resize: a device name and a size.")
    List<String> args = List.of();

    @Override
    public Integer call() {
        if (control == null) {
            control = DefaultControl.forCtl(env);
        }
        if (command.equals("top")) {
            return top();
        }
        String request = request();
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        String line;
        Map<?, ?> response;
        try {
            line = ControlClient.request(control, request);
            response = (Map<?, ?>) Json.parse(line);
        } catch (IOException | IllegalArgumentException | ClassCastException e) {
            return failed(e, err);
        }
        boolean ok = Boolean.TRUE.equals(response.get("ok"));
        if (ok && command.equals("upgrade")) {
            ok = awaitHandover(response, out, err);
        }
        if (json) {
            out.println(line);
        } else {
            render(response, out);
            if (!ok) {
                err.println("jvhost ctl: " + command + ": " + response.get("error"));
                if (response.get("errors") instanceof List<?> problems) {
                    problems.forEach(p -> err.println("  " + p));
                }
            }
        }
        out.flush();
        err.flush();
        return ok ? 0 : 1;
    }

    /**
     * upgrade: waits (at most {@link #UPGRADE_MS}) until the running process exits, having handed over to
     * its successor, or the successor exits first (the takeover failed: the running one serves on).
     */
    private boolean awaitHandover(Map<?, ?> r, PrintWriter out, PrintWriter err) {
        long pid = ((Number) r.get("pid")).longValue();
        long successor = ((Number) r.get("successor")).longValue();
        long deadline = System.nanoTime() + UPGRADE_MS * 1_000_000L;
        while (System.nanoTime() - deadline < 0) {
            if (ProcessHandle.of(pid).map(p -> !p.isAlive()).orElse(true)) {
                out.println("upgraded: pid " + pid + " handed over to pid " + successor);
                return true;
            }
            if (ProcessHandle.of(successor).map(p -> !p.isAlive()).orElse(true)) {
                err.println("jvhost ctl: upgrade: the successor (pid " + successor + ") exited before taking over; "
                        + "pid " + pid + " serves on (its log says why)");
                return false;
            }
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        err.println("jvhost ctl: upgrade: pid " + pid + " has not handed over to pid " + successor + " within "
                + UPGRADE_MS / 1000 + " s");
        return false;
    }

    /** Live rates until interrupted (or {@code --count} screens); 1 when the socket fails. */
    private int top() {
        if (args.size() > 1) {
            throw new ParameterException(spec.commandLine(), "top takes at most one device name");
        }
        if (!(interval >= 0.05 && interval <= 3600) || count < 0) {
            throw new ParameterException(spec.commandLine(), "--interval must be between 0.05 and 3600 seconds "
                    + "and --count not negative");
        }
        PrintWriter err = spec.commandLine().getErr();
        try {
            CtlTop.run(control, args.isEmpty() ? null : args.get(0), Math.round(interval * 1000), count,
                    System.console() != null, spec.commandLine().getOut());
            return 0;
        } catch (IOException | IllegalArgumentException | ClassCastException e) {
            return failed(e, err);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return 1;
        }
    }

    /** Says why the request failed, naming the socket once; exit status 1. */
    private int failed(Exception e, PrintWriter err) {
        String m = String.valueOf(e.getMessage());
        err.println("jvhost ctl: " + (m.startsWith(control.toString()) ? m : control + ": " + m));
        err.flush();
        return 1;
    }

    private String request() {
        int max;
        switch (command) {
            case "list": case "reload": case "upgrade": max = 0; break;
            case "counters": case "violations": max = 1; break;
            case "trace": case "resize": max = 2; break;
            case "add": case "remove": max = 1; break;
            default:
                throw new ParameterException(spec.commandLine(), "unknown command '" + command + "'; commands: "
                        + String.join(", ", ControlRequests.COMMANDS) + ", top");
        }
        if (args.size() > max || (command.equals("add") || command.equals("remove")) && args.isEmpty()
                || (command.equals("trace") || command.equals("resize")) && args.size() != 2) {
            throw new ParameterException(spec.commandLine(), command + " takes " + (max == 0 ? "no argument"
                    : command.equals("trace") ? "a device name and on or off"
                    : command.equals("resize") ? "a device name and a size (bytes, or with K, M, G, T)"
                    : max == 1 && !command.equals("add") && !command.equals("remove") ? "at most one device name"
                    : "exactly one argument"));
        }
        for (String a : args) {
            if (a.indexOf('\n') >= 0 || a.indexOf('\r') >= 0) {
                throw new ParameterException(spec.commandLine(), "an argument cannot contain a line break");
            }
        }
        if (command.equals("add")) {
            return command + " " + absoluteSocket(args.get(0));
        }
        if (command.equals("resize")) {
            return command + " " + args.get(0) + " " + bytes(args.get(1));
        }
        return args.isEmpty() ? command : command + " " + String.join(" ", args);
    }

    /** A size in bytes from {@code 1073741824}, {@code 1G}, {@code 512M}... (powers of 1024). */
    long bytes(String size) {
        String s = size.strip().toUpperCase(java.util.Locale.ROOT);
        int shift = s.isEmpty() ? 0 : "KMGT".indexOf(s.charAt(s.length() - 1)) + 1;
        String digits = shift > 0 ? s.substring(0, s.length() - 1) : s;
        try {
            long n = Long.parseLong(digits);
            if (n < 0 || n > (Long.MAX_VALUE >> (10 * shift))) {
                throw new NumberFormatException();
            }
            return n << (10 * shift);
        } catch (NumberFormatException e) {
            throw new ParameterException(spec.commandLine(), "resize: '" + size + "' is not a size (bytes, or a "
                    + "number with K, M, G or T)");
        }
    }

    /**
     * {@code spec} with a relative {@code socket=}/{@code connect=} path resolved in this client's working
     * directory: the server's means nothing to the user. (The server refuses other relative paths.)
     */
    static String absoluteSocket(String spec) {
        int colon = spec.indexOf(':');
        if (colon < 0) {
            return spec;
        }
        StringBuilder out = new StringBuilder(spec.substring(0, colon + 1));
        String[] items = spec.substring(colon + 1).split(",", -1);
        for (int i = 0; i < items.length; i++) {
            String item = items[i];
            int eq = item.indexOf('=');
            String key = eq < 0 ? item : item.substring(0, eq).strip();
            if ((key.equals(DeviceSpec.KEY_SOCKET) || key.equals(DeviceSpec.KEY_CONNECT)) && eq < item.length() - 1
                    && !item.substring(eq + 1).strip().startsWith("/")) {
                try {
                    item = key + "=" + Path.of(item.substring(eq + 1).strip()).toAbsolutePath().normalize();
                } catch (InvalidPathException e) {
                    // sent as it is: the server says what is wrong with it
                }
            }
            out.append(i == 0 ? "" : ",").append(item);
        }
        return out.toString();
    }

    private void render(Map<?, ?> r, PrintWriter out) {
        switch (command) {
            case "list": renderList(r, out); break;
            case "counters": renderCounters(r, out); break;
            case "add": if (r.get("added") != null) out.println("added " + r.get("added")); break;
            case "remove": if (r.get("removed") != null) out.println("removed " + r.get("removed")); break;
            case "trace": renderTrace(r, out); break;
            case "violations": renderViolations(r, out); break;
            case "upgrade": break; // awaitHandover said it
            case "resize": if (r.get("resized") != null) out.println("resized " + r.get("resized") + " to " + r.get("bytes") + " bytes"); break;
            default: renderReload(r, out);
        }
    }

    private static void renderList(Map<?, ?> r, PrintWriter out) {
        if (!(r.get("devices") instanceof List<?> devices)) {
            return;
        }
        out.printf("%-24s %-10s %-8s %-11s %-20s %-9s %s%n", "NAME", "TYPE", "ORIGIN", "STATE", "FEATURES",
                "QUEUES", "SOCKET");
        for (Object o : devices) {
            Map<?, ?> d = (Map<?, ?>) o;
            int active = d.get("active_queues") instanceof List<?> a ? a.size() : 0;
            out.printf("%-24s %-10s %-8s %-11s %-20s %-9s %s%s%n", d.get("name"), d.get("type"),
                    String.valueOf(d.get("origin")).split(" ")[0], d.get("state"), d.get("features"),
                    active + "/" + d.get("queues"), d.get("mode").equals("listen") ? "" : "-> ", d.get("socket"));
            if (d.get("error") != null) {
                out.println("    error: " + d.get("error"));
            }
        }
    }

    private static void renderCounters(Map<?, ?> r, PrintWriter out) {
        if (!(r.get("devices") instanceof List<?> devices)) {
            return;
        }
        for (Object o : devices) {
            Map<?, ?> d = (Map<?, ?>) o;
            out.println(d.get("name") + ": errors=" + d.get("errors") + pairs((Map<?, ?>) d.get("counters")));
            for (Object q : (List<?>) d.get("queues")) {
                Map<?, ?> m = (Map<?, ?>) q;
                out.printf("  queue %-3s %-8s kicks=%s calls=%s errors=%s%s%n", m.get("index"),
                        Boolean.TRUE.equals(m.get("active")) ? "active" : "inactive", m.get("kicks"), m.get("calls"),
                        m.get("errors"), pairs((Map<?, ?>) m.get("counters")));
            }
        }
    }

    private static void renderTrace(Map<?, ?> r, PrintWriter out) {
        if (r.get("trace") != null) {
            out.println("trace " + r.get("trace") + (r.get("file") == null ? "" : " (" + r.get("file") + ")"));
        }
    }

    private static void renderViolations(Map<?, ?> r, PrintWriter out) {
        if (!(r.get("devices") instanceof List<?> devices)) {
            return;
        }
        for (Object o : devices) {
            Map<?, ?> d = (Map<?, ?>) o;
            out.println(d.get("name") + ": " + (Boolean.TRUE.equals(d.get("strict")) ? "strict" : "strict off")
                    + ", violations=" + d.get("violations"));
            ((Map<?, ?>) d.get("rules")).forEach((rule, n) -> {
                if (((Number) n).longValue() != 0) {
                    out.println("  " + rule + "=" + n);
                }
            });
        }
    }

    private static String pairs(Map<?, ?> m) {
        StringBuilder s = new StringBuilder();
        m.forEach((k, v) -> s.append(' ').append(k).append('=').append(v));
        return s.toString();
    }

    private static void renderReload(Map<?, ?> r, PrintWriter out) {
        if (r.get("added") == null) {
            return; // refused: the errors go to stderr
        }
        for (String key : new String[] {"added", "removed", "restarted", "unchanged", "failed", "warnings"}) {
            List<?> names = (List<?>) r.get(key);
            if (names != null && !names.isEmpty()) {
                out.println(key + ": " + String.join(key.equals("failed") || key.equals("warnings") ? "\n  " : ", ",
                        names.stream().map(String::valueOf).toList()));
            }
        }
    }
}
