package org.jvhost.engine.event;

/**
 * A worker's ready queues in FIFO order: a circular buffer of {@code count} entries from {@code head},
 * whose length is a power of two. A queue is on it at most once (its own flag says so), so it grows only
 * when more distinct queues are ready at once than ever before, never per re-delivery. Worker thread only.
 */
final class ReadyList {
    private ReadyQueue[] ready = new ReadyQueue[16];
    private int head;
    private int count;

    int size() {
        return count;
    }

    /** Adds {@code queue} at the tail. */
    void add(ReadyQueue queue) {
        if (count == ready.length) {
            ReadyQueue[] grown = new ReadyQueue[ready.length * 2];
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
    ReadyQueue poll() {
        ReadyQueue q = ready[head];
        ready[head] = null;
        head = (head + 1) & (ready.length - 1);
        count--;
        return q;
    }

    /** Removes {@code queue} wherever it stands, keeping the others' order. Idempotent. */
    void remove(ReadyQueue queue) {
        int mask = ready.length - 1;
        int kept = 0;
        for (int i = 0; i < count; i++) {
            ReadyQueue q = at(i);
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

    boolean contains(ReadyQueue queue) {
        for (int i = 0; i < count; i++) {
            if (at(i) == queue) {
                return true;
            }
        }
        return false;
    }

    private ReadyQueue at(int i) {
        return ready[(head + i) & (ready.length - 1)];
    }
}
