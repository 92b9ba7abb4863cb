package org.jvhost.engine.event;

import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * Runs a task on a loop thread (a worker) once a bound is over, so the loop itself never sleeps: a ring
 * waiting for its device's outstanding requests gives up after its bound this way. One daemon thread,
 * started the first time a bound is set, only counts the time.
 */
public final class Deadlines {
    private Deadlines() {
    }

    /** Holder idiom: the thread exists only once a deadline is used. */
    private static final class Lazy {
        static final ScheduledExecutorService TIMER = new ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, "jvhost-deadline");
            t.setDaemon(true);
            return t;
        });
    }

    /** Posts {@code task} to {@code loop} after {@code delayMs}. */
    public static void after(long delayMs, Executor loop, Runnable task) {
        Lazy.TIMER.schedule(() -> loop.execute(task), delayMs, TimeUnit.MILLISECONDS);
    }
}
