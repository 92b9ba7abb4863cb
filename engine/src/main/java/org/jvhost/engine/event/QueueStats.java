package org.jvhost.engine.event;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * What the engine counts for one queue of one device, over the device's whole life (across front-end
 * connections): kicks delivered to the device, calls signalled to the driver, errors (the queue broke
 * or a device callback for it threw), and whether the device holds the queue now.
 *
 * <p>The counters sit on the per-packet path, so counting is a plain load and an opaque store: no
 * lock, no allocation, no fence. That is exact because each counter has a single writer, the worker
 * of the queue's group (every kick, call and queue callback runs there). Readers on other threads (the
 * control API, the metrics endpoint) read opaquely: they may see a value a few increments old, never a
 * torn one (JLS 17.7 allows plain {@code long} writes to tear; opaque access does not).
 */
public final class QueueStats {
    private static final VarHandle KICKS;
    private static final VarHandle CALLS;
    private static final VarHandle ERRORS;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            KICKS = l.findVarHandle(QueueStats.class, "kicks", long.class);
            CALLS = l.findVarHandle(QueueStats.class, "calls", long.class);
            ERRORS = l.findVarHandle(QueueStats.class, "errors", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    @SuppressWarnings("unused") // accessed through KICKS
    private long kicks;
    @SuppressWarnings("unused") // accessed through CALLS
    private long calls;
    @SuppressWarnings("unused") // accessed through ERRORS
    private long errors;
    private volatile boolean active;

    /** A kick reached the device. Queue's worker only. */
    public void kicked() {
        KICKS.setOpaque(this, (long) KICKS.getOpaque(this) + 1);
    }

    /** The driver was signalled (used buffers). Queue's worker only. */
    public void called() {
        CALLS.setOpaque(this, (long) CALLS.getOpaque(this) + 1);
    }

    /** The queue broke, or a device callback for it threw. Queue's worker only. */
    public void failed() {
        ERRORS.setOpaque(this, (long) ERRORS.getOpaque(this) + 1);
    }

    /** Marks the queue as held by its device (started) or not; the device runtime only. */
    public void setActive(boolean active) {
        this.active = active;
    }

    public long kicks() {
        return (long) KICKS.getOpaque(this);
    }

    public long calls() {
        return (long) CALLS.getOpaque(this);
    }

    public long errors() {
        return (long) ERRORS.getOpaque(this);
    }

    /** Whether the device holds the queue now (started and enabled). */
    public boolean active() {
        return active;
    }
}
