package org.jvhost.engine.event;

/**
 * A worker's list of queues in FIFO order (its ready queues, and those to {@linkplain SettlingQueue settle}): a circular buffer of {@code count} entries from {@code head},
 * whose length is a power of two. A queue is on it at most once (its own flag says so), so it grows only
 * when more distinct queues are ready at once than ever before, never per re-delivery. Worker thread only.
 */
final class ReadyList<Q> {
    private Object[] ready = new Object[16];
    private int head;
    private int count;

    int size() {
        return count;
    }

    /** Adds {@code queue} at the tail. */
    void add(Q queue) {
        if (count == ready.length) {
            Object[] grown = new Object[ready.length * 2];
            for (int i = 0; i < count; i++) {
                grown[i] = at(i);
            }
            ready = grown;
            head = 0;
        }
        ready[(head + count) & (ready.length - 1)] = queue;
        count++;
    }

    /** Takes the head off; the list is not empty. */
    Q poll() {
        Q q = at(0);
        ready[head] = null;
        head = (head + 1) & (ready.length - 1);
        count--;
        return q;
    }

    /** Removes {@code queue} wherever it stands, keeping the others' order. Idempotent. */
    void remove(Q queue) {
        int mask = ready.length - 1;
        int kept = 0;
        for (int i = 0; i < count; i++) {
            Q q = at(i);
            if (q != queue) {
                ready[(head + kept) & mask] = q;
                kept++;
            }
        }
        for (int i = kept; i < count; i++) {
            ready[(head + i) & mask] = null;
        }
        count = kept;
    }

    boolean contains(Q queue) {
        for (int i = 0; i < count; i++) {
            if (at(i) == queue) {
                return true;
            }
        }
        return false;
    }

    @SuppressWarnings("unchecked") // only add() stores, and only Qs
    private Q at(int i) {
        return (Q) ready[(head + i) & (ready.length - 1)];
    }
}
