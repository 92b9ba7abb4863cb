package org.jvhost.host.config;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SortedSet;
import java.util.TreeSet;
import org.jvhost.engine.instrument.FaultPlan;
import org.jvhost.engine.instrument.Instrument;
import org.jvhost.engine.instrument.ProtocolTrace;
import org.jvhost.engine.protocol.FrontendRequest;

/**
 * The host's instrument keys, accepted by every device type: {@code trace=PATH} (write every
 * vhost-user message to PATH; {@code jvhost ctl trace NAME on|off} switches it at run time),
 * {@code trace-format=json|text} (JSON Lines by default), {@code trace-max-bytes=N} (the file rotates
 * to PATH.1 at N bytes; 64 MiB by default), {@code strict=on|off} (report the front-end's spec
 * violations), and the injected faults ({@link FaultPlan}): {@code fault-drop-after-message=N},
 * {@code fault-drop-sweep=K},
 * {@code fault-nack=REQUEST[:REQUEST...]}, {@code fault-delay-ms=D}, {@code fault-queues=N},
 * {@code fault-drop-after-frames=N}, {@code fault-stall-rx=N:MS}, {@code fault-stall-tx=N:MS} and
 * {@code fault-seed=S} (random mode).
 *
 * @param trace         the trace file, or null for none
 * @param format        the trace's line format
 * @param traceMaxBytes the trace's rotation size
 * @param strict        whether strict mode is on
 * @param faults        the faults to inject
 */
public record InstrumentOptions(Path trace, ProtocolTrace.Format format, long traceMaxBytes, boolean strict, FaultPlan faults) {
    public static final String KEY_TRACE = "trace";
    static final String KEY_TRACE_FORMAT = "trace-format";
    static final String KEY_TRACE_MAX_BYTES = "trace-max-bytes";
    static final String KEY_STRICT = "strict";
    static final String KEY_DROP = "fault-drop-after-message";
    static final String KEY_SWEEP = "fault-drop-sweep";
    static final String KEY_NACK = "fault-nack";
    static final String KEY_DELAY = "fault-delay-ms";
    static final String KEY_QUEUES = "fault-queues";
    static final String KEY_SEED = "fault-seed";
    static final String KEY_DROP_FRAMES = "fault-drop-after-frames";
    static final String KEY_STALL_RX = "fault-stall-rx";
    static final String KEY_STALL_TX = "fault-stall-tx";
    /** Every instrument key, in alphabetical order (for messages listing the keys a device accepts). */
    public static final SortedSet<String> KEYS = Collections.unmodifiableSortedSet(new TreeSet<>(List.of(KEY_TRACE,
            KEY_TRACE_FORMAT, KEY_TRACE_MAX_BYTES, KEY_STRICT, KEY_DROP, KEY_SWEEP, KEY_NACK, KEY_DELAY, KEY_QUEUES,
            KEY_SEED, KEY_DROP_FRAMES, KEY_STALL_RX, KEY_STALL_TX)));

    /**
     * Reads the instrument keys of {@code spec}.
     *
     * @throws IllegalArgumentException naming the device, the key and the value if one is malformed
     */
    public static InstrumentOptions of(DeviceSpec spec) {
        Map<String, String> o = spec.options();
        String trace = o.get(KEY_TRACE);
        if (trace != null && trace.isEmpty()) {
            throw bad(spec, KEY_TRACE, trace, "needs a file path");
        }
        if (trace == null && (o.containsKey(KEY_TRACE_FORMAT) || o.containsKey(KEY_TRACE_MAX_BYTES))) {
            throw new IllegalArgumentException("'" + spec.text() + "': " + KEY_TRACE_FORMAT + " and "
                    + KEY_TRACE_MAX_BYTES + " need " + KEY_TRACE + "=PATH");
        }
        ProtocolTrace.Format format = ProtocolTrace.Format.JSON;
        String f = o.get(KEY_TRACE_FORMAT);
        if (f != null) {
            switch (f) {
                case "json": break;
                case "text": format = ProtocolTrace.Format.TEXT; break;
                default: throw bad(spec, KEY_TRACE_FORMAT, f, "is not json or text");
            }
        }
        long max = Instrument.DEFAULT_TRACE_MAX_BYTES;
        String m = o.get(KEY_TRACE_MAX_BYTES);
        if (m != null) {
            try {
                max = Long.parseLong(m);
            } catch (NumberFormatException e) {
                max = -1;
            }
            if (max < 1024) {
                throw bad(spec, KEY_TRACE_MAX_BYTES, m, "is not a byte count of at least 1024");
            }
        }
        return new InstrumentOptions(trace == null ? null : Path.of(trace).toAbsolutePath(), format, max,
                onOff(spec, KEY_STRICT, o.get(KEY_STRICT)), faults(spec));
    }

    private static FaultPlan faults(DeviceSpec spec) {
        Map<String, String> o = spec.options();
        Set<FrontendRequest> nack = EnumSet.noneOf(FrontendRequest.class);
        String names = o.get(KEY_NACK);
        if (names != null) {
            for (String n : names.split(":", -1)) {
                FrontendRequest r = requestNamed(n);
                if (r == null || !FaultPlan.nackable(r)) {
                    String what = r == null ? "no vhost-user request '" + n + "'"
                            : r + ", whose reply is its answer (no REPLY_ACK)";
                    throw bad(spec, KEY_NACK, names, "names " + what + "; write e.g. SET_MEM_TABLE:SET_VRING_ADDR");
                }
                nack.add(r);
            }
        }
        String seed = o.get(KEY_SEED);
        return new FaultPlan((int) count(spec, KEY_DROP, 1, Integer.MAX_VALUE),
                (int) count(spec, KEY_SWEEP, 1, Integer.MAX_VALUE), nack,
                count(spec, KEY_DELAY, 1, FaultPlan.MAX_DELAY_MS), (int) count(spec, KEY_QUEUES, 1, 0xffff),
                seed == null ? null : count(spec, KEY_SEED, Long.MIN_VALUE, Long.MAX_VALUE),
                count(spec, KEY_DROP_FRAMES, 1, Long.MAX_VALUE), stall(spec, KEY_STALL_RX), stall(spec, KEY_STALL_TX));
    }

    /** {@code N:MS} (after N chains, for MS ms), or null if the key is absent. */
    private static FaultPlan.Stall stall(DeviceSpec spec, String key) {
        String v = spec.options().get(key);
        if (v == null) {
            return null;
        }
        String[] parts = v.split(":", -1);
        try {
            if (parts.length == 2) {
                return new FaultPlan.Stall(Long.parseLong(parts[0]), Long.parseLong(parts[1]));
            }
        } catch (IllegalArgumentException e) {
            // named below (NumberFormatException is one)
        }
        throw bad(spec, key, v, "is not CHAINS:MS (after CHAINS chains, return none for MS ms, 1.."
                + FaultPlan.Stall.MAX_MS + ")");
    }

    private static FrontendRequest requestNamed(String name) {
        String n = name.toUpperCase(Locale.ROOT).replaceFirst("^VHOST_USER_", "");
        for (FrontendRequest r : FrontendRequest.values()) {
            if (r.name().equals(n)) {
                return r;
            }
        }
        return null;
    }

    /** The number {@code key} gives, in {@code [min, max]}; 0 if the key is absent. */
    private static long count(DeviceSpec spec, String key, long min, long max) {
        String v = spec.options().get(key);
        if (v == null) {
            return 0;
        }
        try {
            long n = Long.parseLong(v);
            if (n >= min && n <= max) {
                return n;
            }
        } catch (NumberFormatException e) {
            // named below
        }
        throw bad(spec, key, v, "is not a number in " + min + ".." + max);
    }

    /** Whether {@code spec} gives any instrument key. */
    public static boolean given(DeviceSpec spec) {
        return spec.options().keySet().stream().anyMatch(KEYS::contains);
    }

    /**
     * Sets up {@code instrument}: strict mode, and the trace, started now if a file is given.
     *
     * @throws IOException naming the trace file if it cannot be opened
     */
    public void applyTo(Instrument instrument) throws IOException {
        instrument.setStrict(strict);
        instrument.setFaults(faults);
        if (trace != null) {
            instrument.configureTrace(trace, format, traceMaxBytes);
            instrument.setTracing(true);
        }
    }

    private static boolean onOff(DeviceSpec spec, String key, String value) {
        if (value == null) {
            return false;
        }
        switch (value.toLowerCase(Locale.ROOT)) {
            case "on": case "true": case "yes": case "1": return true;
            case "off": case "false": case "no": case "0": return false;
            default: throw bad(spec, key, value, "is not on or off");
        }
    }

    private static IllegalArgumentException bad(DeviceSpec spec, String key, String value, String why) {
        return new IllegalArgumentException("'" + spec.text() + "': " + key + "=" + value + " " + why);
    }
}
