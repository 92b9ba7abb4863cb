package org.jvhost.host.systemd;

import java.util.Map;
import java.util.function.LongPredicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * systemd's watchdog ({@code WatchdogSec=} in the unit): every half of {@code $WATCHDOG_USEC}, a daemon
 * thread asks whether every loop thread answers (each worker and control loop runs a posted no-op
 * within a quarter of the interval) and only then sends {@code WATCHDOG=1}. A worker held by a device
 * callback that never returns, or a loop that died, stops the pings, and systemd restarts the service
 * (the unit's {@code Restart=on-failure}). Proving the JVM merely runs would not be worth a watchdog.
 */
public final class Watchdog implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Watchdog.class);
    public static final String WATCHDOG_USEC = "WATCHDOG_USEC";
    public static final String WATCHDOG_PID = "WATCHDOG_PID";

    private final Thread thread;
    private volatile boolean closed;

    private Watchdog(ServiceNotifier notifier, LongPredicate loopsAnswer, long intervalMs) {
        this.thread = new Thread(() -> run(notifier, loopsAnswer, intervalMs), "jvhost-sd-watchdog");
        this.thread.setDaemon(true);
    }

    /**
     * Starts pinging if the environment asks for it ({@code WATCHDOG_USEC} set, and {@code WATCHDOG_PID},
     * if set, naming this process) and {@code notifier} goes somewhere; otherwise returns null.
     *
     * @param loopsAnswer whether every loop thread answers within the given milliseconds
     */
    public static Watchdog startIfAsked(Map<String, String> env, ServiceNotifier notifier, LongPredicate loopsAnswer) {
        long usec = intervalUsec(env);
        if (usec <= 0 || !notifier.enabled()) {
            return null;
        }
        Watchdog w = new Watchdog(notifier, loopsAnswer, Math.max(1, usec / 2_000));
        w.thread.start();
        LOG.info("systemd watchdog: WATCHDOG=1 every {} ms while every loop thread answers", Math.max(1, usec / 2_000));
        return w;
    }

    /** The interval systemd asked for, in microseconds; 0 if none (or not for this process). */
    static long intervalUsec(Map<String, String> env) {
        String usec = env.get(WATCHDOG_USEC);
        String pid = env.get(WATCHDOG_PID);
        if (usec == null || (pid != null && !pid.equals(Long.toString(ProcessHandle.current().pid())))) {
            return 0;
        }
        try {
            return Long.parseLong(usec.trim());
        } catch (NumberFormatException e) {
            LOG.warn("{}={} is not a number of microseconds; no watchdog pings", WATCHDOG_USEC, usec);
            return 0;
        }
    }

    private void run(ServiceNotifier notifier, LongPredicate loopsAnswer, long intervalMs) {
        boolean stalled = false;
        while (!closed) {
            long started = System.nanoTime();
            if (loopsAnswer.test(Math.max(1, intervalMs / 2))) {
                notifier.watchdog();
                if (stalled) {
                    LOG.info("systemd watchdog: every loop thread answers again");
                }
                stalled = false;
            } else if (!stalled) {
                LOG.error("systemd watchdog: a worker or control loop did not answer within {} ms; "
                        + "no WATCHDOG=1 until it does", Math.max(1, intervalMs / 2));
                stalled = true;
            }
            long left = intervalMs - (System.nanoTime() - started) / 1_000_000L;
            try {
                Thread.sleep(Math.max(0, left));
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        thread.interrupt();
    }
}
