package org.jvhost.engine.instrument;

import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A trace file: one line per vhost-user message, as JSON Lines or as text. Its size is bounded: once
 * the next line would take it past {@code maxBytes}, the file moves to {@code PATH.1} (replacing the
 * one before) and a new one starts, so the trace never takes more than twice {@code maxBytes} of disk
 * and always ends with the newest messages. Lines are written through as they come (vhost-user
 * messages are few: a QEMU boot sends a few hundred), so a crash loses none. Thread-safe: a device's
 * connections and the control API may use one trace.
 */
public final class ProtocolTrace implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ProtocolTrace.class);

    /** How each line is written. */
    public enum Format {
        /** One JSON object per line (JSON Lines). */
        JSON,
        /** {@code TIME conn=N <- REQUEST flags=[..] size=N fds=N key=value...}, for reading. */
        TEXT
    }

    private final Path path;
    private final Format format;
    private final long maxBytes;
    private Writer out;
    private long written;
    private boolean broken;

    private ProtocolTrace(Path path, Format format, long maxBytes) {
        this.path = path;
        this.format = format;
        this.maxBytes = maxBytes;
    }

    /**
     * Opens (or appends to) the trace file at {@code path}.
     *
     * @param maxBytes the size at which the file is rotated to {@code PATH.1}
     * @throws IOException naming the path if it cannot be opened for writing
     */
    public static ProtocolTrace open(Path path, Format format, long maxBytes) throws IOException {
        if (maxBytes < 1024) {
            throw new IllegalArgumentException("trace size cap " + maxBytes + " bytes is below 1024");
        }
        ProtocolTrace t = new ProtocolTrace(path, format, maxBytes);
        t.reopen(StandardOpenOption.APPEND);
        return t;
    }

    public Path path() {
        return path;
    }

    public Format format() {
        return format;
    }

    /** Writes one record: its fields in order, values being strings, numbers, booleans, lists or maps. */
    public synchronized void write(Map<String, Object> record) {
        if (out == null) {
            return;
        }
        String line = (format == Format.JSON ? json(record, new StringBuilder()) : text(record)).append('\n').toString();
        byte[] bytes = line.getBytes(StandardCharsets.UTF_8);
        try {
            if (written > 0 && written + bytes.length > maxBytes) {
                rotate();
            }
            out.write(line);
            out.flush();
            written += bytes.length;
        } catch (IOException e) {
            if (!broken) {
                broken = true; // one line for a full disk, not one per message
                LOG.warn("trace {}: cannot write, dropping trace lines: {}", path, e.getMessage());
            }
        }
    }

    private void rotate() throws IOException {
        out.close();
        out = null;
        Files.move(path, path.resolveSibling(path.getFileName() + ".1"), StandardCopyOption.REPLACE_EXISTING);
        reopen(StandardOpenOption.TRUNCATE_EXISTING);
    }

    private void reopen(StandardOpenOption mode) throws IOException {
        try {
            out = Files.newBufferedWriter(path, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                    StandardOpenOption.WRITE, mode);
            written = Files.size(path);
        } catch (IOException e) {
            throw new IOException("cannot open the trace file " + path + ": " + e.getMessage(), e);
        }
    }

    /** Closes the file. Idempotent. */
    @Override
    public synchronized void close() {
        if (out != null) {
            try {
                out.close();
            } catch (IOException e) {
                LOG.warn("trace {}: {}", path, e.getMessage());
            }
            out = null;
        }
    }

    // ---- formats --------------------------------------------------------------------------------

    /** {@code time conn=N -> REQUEST key=value ...}: the record's fields, the first three without keys. */
    private static StringBuilder text(Map<String, Object> record) {
        StringBuilder s = new StringBuilder();
        for (Map.Entry<String, Object> e : record.entrySet()) {
            if (s.length() > 0) {
                s.append(' ');
            }
            switch (e.getKey()) {
                case "time": case "request": s.append(e.getValue()); break;
                case "dir": s.append("in".equals(e.getValue()) ? "<-" : "out".equals(e.getValue()) ? "->" : "--"); break;
                default: s.append(e.getKey()).append('='); textValue(e.getValue(), s); break;
            }
        }
        return s;
    }

    private static void textValue(Object v, StringBuilder s) {
        if (v instanceof Map<?, ?> m) {
            s.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : m.entrySet()) {
                s.append(first ? "" : " ").append(e.getKey()).append('=');
                textValue(e.getValue(), s);
                first = false;
            }
            s.append('}');
        } else if (v instanceof List<?> l) {
            s.append('[');
            for (int i = 0; i < l.size(); i++) {
                s.append(i == 0 ? "" : ",");
                textValue(l.get(i), s);
            }
            s.append(']');
        } else {
            s.append(v);
        }
    }

    private static StringBuilder json(Object v, StringBuilder s) {
        if (v instanceof Map<?, ?> m) {
            s.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : m.entrySet()) {
                s.append(first ? "" : ",");
                json(String.valueOf(e.getKey()), s).append(':');
                json(e.getValue(), s);
                first = false;
            }
            return s.append('}');
        }
        if (v instanceof List<?> l) {
            s.append('[');
            for (int i = 0; i < l.size(); i++) {
                json(l.get(i), s.append(i == 0 ? "" : ","));
            }
            return s.append(']');
        }
        if (v == null || v instanceof Number || v instanceof Boolean) {
            return s.append(v);
        }
        s.append('"');
        for (char c : v.toString().toCharArray()) {
            switch (c) {
                case '"': s.append("\\\""); break;
                case '\\': s.append("\\\\"); break;
                case '\n': s.append("\\n"); break;
                default:
                    if (c < 0x20) {
                        s.append(String.format("\\u%04x", (int) c));
                    } else {
                        s.append(c);
                    }
            }
        }
        return s.append('"');
    }
}
