package org.jvhost.engine.instrument;

import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * The injected faults' timer: runs an answer a fault delays ({@code fault-delay-ms}) on its control loop
 * once the delay is over, and posts the kick that ends a stalled ring ({@code fault-stall-rx/tx}) to the
 * ring's worker, so neither a control thread nor a worker ever sleeps through a fault: other devices on
 * that thread go on meanwhile. One daemon thread, started the first time a fault needs it, only counts
 * the time.
 */
public final class ReplyTimer {
    private ReplyTimer() {
    }

    /** Holder idiom: the timer thread exists only once a delay is used. */
    private static final class Lazy {
        static final ScheduledExecutorService TIMER = new ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, "jvhost-fault-delay");
            t.setDaemon(true);
            return t;
        });
    }

    /** Runs {@code task} on {@code loop} after {@code delayMs}; at once (on the caller's thread) if 0. */
    public static void after(long delayMs, Executor loop, Runnable task) {
        if (delayMs <= 0) {
            task.run();
        } else {
            Lazy.TIMER.schedule(() -> loop.execute(task), delayMs, TimeUnit.MILLISECONDS);
        }
    }
}
