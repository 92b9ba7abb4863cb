package org.jvhost.engine.event;

/**
 * A queue its worker polls instead of waiting for a kick, while traffic flows (adaptive busy-polling,
 * see {@link Worker#startPolling}). Both methods run on the worker thread.
 */
public interface PolledQueue {

    /**
     * Looks for buffers the driver published since the last look and, if there are any, hands them to
     * the device as a kick would.
     *
     * @return true if there was new work (the queue stays hot)
     */
    boolean poll();

    /**
     * Whether the queue waits for its device to complete requests on other threads: a round that finds
     * no new work then ends its polling at once ({@link #endPolling}) instead of after the idle period,
     * and the worker sleeps until the completions (or a kick) wake it.
     */
    default boolean awaitingCompletions() {
        return false;
    }

    /**
     * The queue was idle for the polling period: ask the driver to kick again, then re-check the ring,
     * because a buffer published just before the request would otherwise wait for a kick that never
     * comes. If the re-check finds work, the queue processes it and keeps polling.
     *
     * @return true to keep polling (work arrived meanwhile), false once kicks are re-armed
     */
    boolean endPolling();
}
