package org.jvhost.engine.event;

import java.util.Arrays;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The queues one worker polls (adaptive busy-polling, see {@link Worker}), each with when it last found
 * work, and the {@link PollWindow} after which an idle one re-arms its kicks and leaves. Worker thread
 * only; nothing is allocated once the arrays have grown to the most queues polled at once.
 */
final class PolledSet {
    private static final Logger LOG = LoggerFactory.getLogger(PolledSet.class);

    private final String owner;
    private final RunningCallback callback;
    final PollWindow window;
    private PolledQueue[] queues = new PolledQueue[4];
    /** When each queue last found work (System.nanoTime). */
    private long[] lastWork = new long[4];
    private int count;

    /**
     * @param owner    the worker's thread name, for log lines
     * @param callback what runs now, for the watchdog
     * @param window   the idle time after which a polled queue re-arms its kicks
     */
    PolledSet(String owner, RunningCallback callback, PollWindow window) {
        this.owner = owner;
        this.callback = callback;
        this.window = window;
    }

    int size() {
        return count;
    }

    boolean contains(PolledQueue queue) {
        return indexOf(queue) >= 0;
    }

    /** Adds {@code queue}, counted as having found work at {@code now}; no effect if it is in already. */
    void add(PolledQueue queue, long now) {
        if (contains(queue)) {
            return;
        }
        if (count == queues.length) {
            queues = Arrays.copyOf(queues, count * 2);
            lastWork = Arrays.copyOf(lastWork, count * 2);
        }
        queues[count] = queue;
        lastWork[count] = now;
        count++;
    }

    /** Takes {@code queue} out without calling it. Idempotent. */
    void remove(PolledQueue queue) {
        int i = indexOf(queue);
        if (i >= 0) {
            removeAt(i);
        }
    }

    /**
     * One round over the queues: each polls; one idle for longer than the window, or idle while it awaits
     * its device's completions, is asked to end polling and leaves unless its re-check found work. Spins (Thread.onSpinWait) if no queue had work.
     *
     * @param leaveWhenIdle a queue that finds no work leaves at once, whatever the window ({@link Worker#holdPolling})
     */
    void pollRound(long now, boolean leaveWhenIdle) {
        boolean found = false;
        long idleLimit = leaveWhenIdle ? 0 : window.nanos();
        for (int i = count - 1; i >= 0; i--) {
            if (i >= count) {
                continue; // a callback removed entries meanwhile
            }
            PolledQueue q = queues[i];
            boolean keep;
            callback.enter(q, now);
            try {
                if (q.poll()) {
                    found = true;
                    lastWork[i] = now;
                    continue;
                }
                if (now - lastWork[i] < idleLimit && !q.awaitingCompletions()) {
                    continue;
                }
                keep = q.endPolling();
            } catch (Throwable t) {
                // queues guard device code themselves; this only catches engine bugs
                LOG.error("{}: polled queue failed, polling it stops", owner, t);
                keep = false;
            } finally {
                callback.leave();
            }
            if (i < count && queues[i] == q) {
                if (keep) {
                    found = true;
                    lastWork[i] = now;
                } else {
                    removeAt(i);
                }
            }
        }
        if (!found) {
            Thread.onSpinWait();
        }
    }

    private int indexOf(PolledQueue queue) {
        for (int i = 0; i < count; i++) {
            if (queues[i] == queue) {
                return i;
            }
        }
        return -1;
    }

    private void removeAt(int i) {
        count--;
        queues[i] = queues[count];
        lastWork[i] = lastWork[count];
        queues[count] = null;
    }
}
