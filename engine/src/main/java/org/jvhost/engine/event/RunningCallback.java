package org.jvhost.engine.event;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Which callback a worker runs now and since when: written by the worker around every callback, read
 * by the {@link CallbackWatchdog}, which reports one that runs too long once per episode.
 *
 * <p>Release/opaque accesses (plain moves on x86), no allocation: a volatile store's full fence on
 * every callback would cost more than the watchdog, which only needs to see them within its period,
 * is worth.
 */
final class RunningCallback implements LoopMailbox.Tracker {
    private static final Logger LOG = LoggerFactory.getLogger(Worker.class);
    private static final VarHandle WHAT;
    private static final VarHandle SINCE;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            WHAT = l.findVarHandle(RunningCallback.class, "what", Object.class);
            SINCE = l.findVarHandle(RunningCallback.class, "since", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** The callback running (its toString names the device and queue), or null. */
    private Object what;
    /** When it started ({@link System#nanoTime}). */
    private long since;
    /** The {@link #since} of the last stall reported (watchdog thread only): one WARN per episode. */
    private long reported;

    /** {@code callback} starts now. Worker thread. */
    @Override
    public void enter(Object callback) {
        enter(callback, System.nanoTime());
    }

    /** {@code callback} starts at {@code now} (a time the caller already has). Worker thread. */
    void enter(Object callback, long now) {
        SINCE.setOpaque(this, now);
        WHAT.setRelease(this, callback);
    }

    /** The callback returned. Worker thread. */
    @Override
    public void leave() {
        WHAT.setRelease(this, null);
    }

    /**
     * Logs a WARN with {@code worker}'s stack if the callback running now started more than
     * {@code thresholdNanos} before {@code now}, once per callback. Watchdog thread.
     */
    void reportStall(long now, long thresholdNanos, Thread worker) {
        Object callback = WHAT.getAcquire(this);
        long start = (long) SINCE.getOpaque(this);
        if (callback == null || now - start < thresholdNanos || start == reported) {
            return;
        }
        reported = start;
        Throwable stack = new Throwable("stack of " + worker.getName());
        stack.setStackTrace(worker.getStackTrace());
        LOG.warn("{}: {} has been running for {} ms; the other queues, fd watches and commands of this worker "
                + "wait until it returns", worker.getName(), callback, (now - start) / 1_000_000L, stack);
    }
}
