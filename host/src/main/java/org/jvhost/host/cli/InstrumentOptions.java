package org.jvhost.host.cli;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.jvhost.engine.instrument.Instrument;
import org.jvhost.engine.instrument.ProtocolTrace;

/**
 * The host's instrument keys, accepted by every device type: {@code trace=PATH} (write every
 * vhost-user message to PATH; {@code jvhost ctl trace NAME on|off} switches it at run time),
 * {@code trace-format=json|text} (JSON Lines by default), {@code trace-max-bytes=N} (the file rotates
 * to PATH.1 at N bytes; 64 MiB by default) and {@code strict=on|off} (report the front-end's spec
 * violations).
 *
 * @param trace         the trace file, or null for none
 * @param format        the trace's line format
 * @param traceMaxBytes the trace's rotation size
 * @param strict        whether strict mode is on
 */
record InstrumentOptions(Path trace, ProtocolTrace.Format format, long traceMaxBytes, boolean strict) {
    static final String KEY_TRACE = "trace";
    static final String KEY_TRACE_FORMAT = "trace-format";
    static final String KEY_TRACE_MAX_BYTES = "trace-max-bytes";
    static final String KEY_STRICT = "strict";
    static final Set<String> KEYS = Set.of(KEY_TRACE, KEY_TRACE_FORMAT, KEY_TRACE_MAX_BYTES, KEY_STRICT);

    /**
     * Reads the instrument keys of {@code spec}.
     *
     * @throws IllegalArgumentException naming the device, the key and the value if one is malformed
     */
    static InstrumentOptions of(DeviceSpec spec) {
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
                onOff(spec, KEY_STRICT, o.get(KEY_STRICT)));
    }

    /** Whether {@code spec} gives any instrument key. */
    static boolean given(DeviceSpec spec) {
        return spec.options().keySet().stream().anyMatch(KEYS::contains);
    }

    /**
     * Sets up {@code instrument}: strict mode, and the trace, started now if a file is given.
     *
     * @throws IOException naming the trace file if it cannot be opened
     */
    void applyTo(Instrument instrument) throws IOException {
        instrument.setStrict(strict);
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
