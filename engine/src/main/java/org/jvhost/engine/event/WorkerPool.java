package org.jvhost.engine.event;

import java.util.ArrayList;
import java.util.List;
import org.jvhost.engine.sys.NativeException;

/**
 * The fixed set of workers serving every queue of every device. A queue group always lands on the
 * same worker: a stable hash of (device serial, group) modulo the pool size.
 */
public final class WorkerPool implements AutoCloseable {
    private final List<Worker> workers = new ArrayList<>();

    public WorkerPool(int size) throws NativeException {
        if (size < 1) {
            throw new IllegalArgumentException("worker count " + size + " must be at least 1");
        }
        try {
            for (int i = 0; i < size; i++) {
                workers.add(new Worker(i));
            }
        } catch (NativeException e) {
            close();
            throw e;
        }
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

    @Override
    public void close() {
        for (Worker w : workers) {
            w.close();
        }
    }
}
