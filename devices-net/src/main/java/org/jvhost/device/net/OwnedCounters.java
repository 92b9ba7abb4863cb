package org.jvhost.device.net;

import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Counters that one thread adds to (a queue pair's or the control queue's worker) and any thread reads
 * (metrics, a hot upgrade's state). The single writer needs no read-modify-write: a plain read and a
 * release store; readers load with acquire.
 */
final class OwnedCounters {
    private final AtomicLongArray values;

    OwnedCounters(int count) {
        values = new AtomicLongArray(count);
    }

    /** Adds {@code by} to counter {@code slot}; the owning thread only. */
    void add(int slot, long by) {
        values.setRelease(slot, values.getPlain(slot) + by);
    }

    long get(int slot) {
        return values.getAcquire(slot);
    }

    /** Every counter, in slot order (a hot upgrade's state). */
    long[] snapshot() {
        long[] v = new long[values.length()];
        for (int i = 0; i < v.length; i++) {
            v[i] = get(i);
        }
        return v;
    }

    /** A hot upgrade: the counters go on from the previous process's {@code from} (those it had). */
    void restore(long[] from) {
        for (int i = 0; i < Math.min(from.length, values.length()); i++) {
            values.setRelease(i, from[i]);
        }
    }
}
