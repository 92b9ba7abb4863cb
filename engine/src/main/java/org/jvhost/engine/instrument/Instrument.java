package org.jvhost.engine.instrument;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLongArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One device's instrument settings and findings: where its protocol trace goes and whether it is on,
 * whether strict mode reports spec violations, and how many it has reported per {@link SpecRule}
 * (counted from the device's creation, across connections). Each connection watches its messages
 * through a {@link SessionTap} from {@link #open}. Thread-safe: the control API switches the trace
 * while connections write to it.
 */
public final class Instrument implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Instrument.class);
    /** The default trace size cap (the file rotates to {@code PATH.1} there). */
    public static final long DEFAULT_TRACE_MAX_BYTES = 64L << 20;
    /** Counter name of the faults injected ({@link FaultPlan}). */
    public static final String FAULTS = "faults_injected";
    /** Counter name of all violations; each rule's is {@code spec_violation.<id>}. */
    public static final String VIOLATIONS = "spec_violations";
    /** Counter name of the kicks strict mode found the driver should not have sent. */
    public static final String EXTRA_KICKS = "extra_kicks";

    private final String device;
    private final AtomicLongArray violations = new AtomicLongArray(SpecRule.values().length);
    private final AtomicInteger connections = new AtomicInteger();
    private final java.util.concurrent.atomic.AtomicLong faults = new java.util.concurrent.atomic.AtomicLong();
    private final java.util.concurrent.atomic.AtomicLong extraKicks = new java.util.concurrent.atomic.AtomicLong();
    private volatile FaultPlan faultPlan = FaultPlan.NONE;
    private volatile boolean strict;
    private volatile ProtocolTrace trace;
    private Path tracePath;
    private ProtocolTrace.Format traceFormat = ProtocolTrace.Format.JSON;
    private long traceMaxBytes = DEFAULT_TRACE_MAX_BYTES;

    /** @param device the device's name, for WARN lines */
    public Instrument(String device) {
        this.device = device;
    }

    /** Turns strict mode on or off (it applies to the messages that follow). */
    public void setStrict(boolean on) {
        strict = on;
    }

    public boolean strict() {
        return strict;
    }

    /** The faults to inject into the connections that follow. */
    public void setFaults(FaultPlan plan) {
        faultPlan = plan;
        if (plan.any()) {
            LOG.warn("{}: fault injection on: {}{}", device, plan,
                    plan.seed() == null ? "" : " (random mode: " + FaultInjector.RANDOM_BOUNDS + "; "
                            + DataPathFaults.RANDOM_BOUNDS + ")");
        }
    }

    public FaultPlan faults() {
        return faultPlan;
    }

    /** Faults injected so far. */
    public long faultsInjected() {
        return faults.get();
    }

    /**
     * Where {@link #setTracing(boolean) tracing} writes, in which format, rotating at {@code maxBytes}.
     * A trace already on keeps its file until it is switched off and on again.
     */
    public synchronized void configureTrace(Path path, ProtocolTrace.Format format, long maxBytes) {
        this.tracePath = path;
        this.traceFormat = format;
        this.traceMaxBytes = maxBytes;
    }

    /**
     * Starts or stops the trace; starting appends to the configured file. Idempotent.
     *
     * @throws IOException naming the file if it cannot be opened
     * @throws IllegalStateException if {@code on} and no trace file was configured
     */
    public synchronized void setTracing(boolean on) throws IOException {
        if (on == (trace != null)) {
            return;
        }
        if (!on) {
            ProtocolTrace t = trace;
            trace = null;
            t.close();
            LOG.info("{}: protocol trace off ({})", device, t.path());
            return;
        }
        if (tracePath == null) {
            throw new IllegalStateException(device + " has no trace file: give the device trace=PATH");
        }
        trace = ProtocolTrace.open(tracePath, traceFormat, traceMaxBytes);
        LOG.info("{}: protocol trace on, {} to {}", device, traceFormat.name().toLowerCase(java.util.Locale.ROOT),
                tracePath);
    }

    /** The trace being written, or null when tracing is off. */
    public ProtocolTrace trace() {
        return trace;
    }

    /** A tap for a new connection of a device of virtio type {@code deviceType}. */
    public SessionTap open(int deviceType) {
        int conn = connections.incrementAndGet();
        return new SessionTap(this, conn, deviceType, faultPlan, fault -> injected(conn, fault));
    }

    /** Counts and logs one injected fault. */
    private void injected(int conn, String fault) {
        faults.incrementAndGet();
        LOG.warn("{}: fault injected: connection {}: {}", device, conn, fault);
    }

    /** Counts and logs one violation if strict mode is on; {@code conn} numbers the connection. */
    void report(int conn, SpecRule rule, String detail) {
        if (!strict) {
            return;
        }
        violations.incrementAndGet(rule.ordinal());
        LOG.warn("{}: strict: connection {}: front-end broke {}: {}", device, conn, rule.cite(), detail);
    }

    /** Counts kicks strict mode found extra (see {@link RingChecks}); any worker. */
    void extraKicks(long kicks) {
        extraKicks.addAndGet(kicks);
    }

    /** The kicks strict mode found the driver should not have sent. */
    public long extraKicks() {
        return extraKicks.get();
    }

    /** The violations reported so far. */
    public long violations() {
        long n = 0;
        for (int i = 0; i < violations.length(); i++) {
            n += violations.get(i);
        }
        return n;
    }

    /** The violations reported so far under {@code rule}. */
    public long violations(SpecRule rule) {
        return violations.get(rule.ordinal());
    }

    /**
     * The counters for the control API and metrics: in strict mode {@value #VIOLATIONS} and one
     * {@code spec_violation.<id>} per rule, with faults planned {@value #FAULTS}; else none.
     */
    public Map<String, Long> counters() {
        Map<String, Long> m = new LinkedHashMap<>();
        if (faultPlan.any() || faults.get() > 0) {
            m.put(FAULTS, faults.get());
        }
        if (strict) {
            m.put(VIOLATIONS, violations());
            m.put(EXTRA_KICKS, extraKicks.get());
            for (SpecRule r : SpecRule.values()) {
                m.put("spec_violation." + r.id(), violations(r));
            }
        }
        return m;
    }

    /** Closes the trace file. */
    @Override
    public synchronized void close() {
        if (trace != null) {
            trace.close();
            trace = null;
        }
    }
}
