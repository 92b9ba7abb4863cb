package org.jvhost.engine.instrument;

import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * Runs an answer an injected fault delays ({@code fault-delay-ms}) on its control loop once the delay is
 * over, so the control thread never sleeps through it: other devices on that thread go on meanwhile. One
 * daemon thread, started the first time a delay is injected, only counts the time.
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
