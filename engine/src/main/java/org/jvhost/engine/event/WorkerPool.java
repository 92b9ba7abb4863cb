package org.jvhost.engine.event;

import java.util.ArrayList;
import java.util.List;
import org.jvhost.engine.sys.NativeException;

/**
 * The fixed set of workers serving every queue of every device. A queue group always lands on the
 * same worker: a stable hash of (device serial, group) modulo the pool size. A
 * {@link CallbackWatchdog} reports device callbacks that hang on any of them.
 */
public final class WorkerPool implements AutoCloseable {
    /** Default adaptive busy-polling time: idle microseconds before a polled queue re-arms kicks, at first. */
    public static final int DEFAULT_POLL_MICROS = Polling.DEFAULT_MICROS;

    private final List<Worker> workers = new ArrayList<>();
    private CallbackWatchdog watchdog;

    /** {@code size} workers polling busy queues within {@link Polling#DEFAULT}. */
    public WorkerPool(int size) throws NativeException {
        this(size, Polling.DEFAULT);
    }

    /**
     * @param size       worker threads
     * @param pollMicros the idle time after which a polled queue re-arms kicks at first, growing up to
     *                   {@link Polling#startingAt}; 0 disables polling (see {@link PollWindow})
     */
    public WorkerPool(int size, int pollMicros) throws NativeException {
        this(size, Polling.startingAt(pollMicros));
    }

    /**
     * @param size    worker threads
     * @param polling how long a worker keeps polling a queue that found no new work before it asks the
     *                driver to kick again and sleeps (see {@link PollWindow})
     */
    public WorkerPool(int size, Polling polling) throws NativeException {
        if (size < 1) {
            throw new IllegalArgumentException("worker count " + size + " must be at least 1");
        }
        try {
            for (int i = 0; i < size; i++) {
                workers.add(new Worker(i, polling));
            }
        } catch (NativeException e) {
            close();
            throw e;
        }
        watchdog = new CallbackWatchdog(workers, CallbackWatchdog.DEFAULT_THRESHOLD_MS);
    }

    /** The worker serving {@code group} of the device numbered {@code deviceSerial}. */
    public Worker workerFor(int deviceSerial, int group) {
        long h = deviceSerial * 0x9E3779B97F4A7C15L + group;
        h ^= h >>> 31;
        return workers.get((int) Math.floorMod(h, (long) workers.size()));
    }

    public int size() {
        return workers.size();
    }

    /** Holds or releases polling on every worker ({@link Worker#holdPolling}). */
    public void holdPolling(boolean hold) {
        for (Worker w : workers) {
            w.holdPolling(hold);
        }
    }

    /** Posts {@code command} to every worker; each future completes when its worker ran it. */
    public List<java.util.concurrent.CompletableFuture<Void>> postToEach(Runnable command) {
        List<java.util.concurrent.CompletableFuture<Void>> done = new ArrayList<>(workers.size());
        for (Worker w : workers) {
            done.add(LoopMailbox.completion(w::execute, command));
        }
        return done;
    }

    @Override
    public void close() {
        if (watchdog != null) {
            watchdog.close();
        }
        for (Worker w : workers) {
            w.close();
        }
    }
}
