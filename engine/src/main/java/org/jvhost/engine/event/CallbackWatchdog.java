package org.jvhost.engine.event;

import java.util.List;

/**
 * Looks at every worker about every {@link #PERIOD_MS} and reports a device callback that has run
 * longer than a threshold: a WARN naming the device and queue, with the worker thread's stack, once
 * per episode (not again until that callback returns). A callback that hangs holds up every queue,
 * fd watch and command of its worker, so this is the first thing an operator needs to see.
 * One daemon thread for the whole pool; the workers' hot path only stores what runs since when.
 */
final class CallbackWatchdog implements AutoCloseable {
    static final long PERIOD_MS = 250;
    /** Callbacks are meant to return within microseconds; a second is a hang, not a slow packet. */
    static final long DEFAULT_THRESHOLD_MS = 1000;

    private final List<Worker> workers;
    private final long thresholdNanos;
    private final Thread thread;
    private volatile boolean running = true;

    CallbackWatchdog(List<Worker> workers, long thresholdMs) {
        this.workers = List.copyOf(workers);
        this.thresholdNanos = thresholdMs * 1_000_000L;
        this.thread = new Thread(this::loop, "jvhost-watchdog");
        this.thread.setDaemon(true);
        this.thread.start();
    }

    private void loop() {
        while (running) {
            long now = System.nanoTime();
            for (Worker w : workers) {
                w.reportStall(now, thresholdNanos);
            }
            try {
                Thread.sleep(PERIOD_MS);
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    @Override
    public void close() {
        running = false;
        thread.interrupt();
        try {
            thread.join(1000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
