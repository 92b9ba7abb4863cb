package org.jvhost.engine.event;

import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * Runs a task on a loop thread (a worker or a control loop) once a delay is over, so the loop itself
 * never sleeps and the other devices on it go on meanwhile: a ring waiting for its device's outstanding
 * requests gives up after its bound this way, an injected fault's delayed reply is sent, a stalled ring
 * is kicked again. One daemon thread, started the first time a delay is set, only counts the time.
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

    /** Posts {@code task} to {@code loop} after {@code delayMs}; runs it at once, on the caller's thread, if 0. */
    public static void after(long delayMs, Executor loop, Runnable task) {
        if (delayMs <= 0) {
            task.run();
        } else {
            Lazy.TIMER.schedule(() -> loop.execute(task), delayMs, TimeUnit.MILLISECONDS);
        }
    }
}
