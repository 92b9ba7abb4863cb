package org.jvhost.engine.virtq;

import org.jvhost.spi.GuestMemory;
import org.jvhost.spi.Virtqueue;

/**
 * What the host (not the device) does with a live virtqueue of either layout: the split ring
 * ({@link SplitQueue}) or the packed ring ({@link PackedQueue}). The session's ring lifecycle, memory
 * updates, dirty logging and the worker's polling use only this, so they need not know which layout
 * the driver negotiated (VIRTIO_F_RING_PACKED).
 *
 * <p>Threading as in {@link SplitQueue}: the notifier and enabled setters are safe from any thread,
 * everything else runs on the queue's worker.
 */
public interface HostQueue extends Virtqueue {

    /** Replaces the call notifier (SET_VRING_CALL while running). Safe from any thread. */
    void setNotifier(CallNotifier notifier);

    /** Sets where to report that the queue broke (SET_VRING_ERR's eventfd), signalled once. Any thread. */
    void setErrorNotifier(CallNotifier notifier);

    /** Sets the enabled flag the device sees. A new queue is enabled. Safe from any thread. */
    void setEnabled(boolean enabled);

    /** Swaps in a new guest-memory snapshot; breaks the queue if a ring no longer lies in it. Worker only. */
    void updateMemory(GuestMemory newMemory);

    /** Starts, moves or (with null) stops dirty-page logging, flushing the previous log first. Worker only. */
    void setLog(RingLog next);

    /** The dirty-page log in use, or null. Worker only. */
    RingLog log();

    /** Host-controlled polling: the driver is asked not to kick while on. Worker only. */
    void setHostPolling(boolean on);

    /** Whether the host polls this queue. */
    boolean isHostPolling();

    /**
     * Signals the driver if an interrupt this queue skipped since its last one is owed after all: the
     * driver now asks for one about an entry already in the used ring (with EVENT_IDX: used_event lies
     * among the last ring-size entries published; otherwise its flags allow interrupts). Sent at most
     * once; while none is owed the skip stays on record for the next check. A guest whose memory
     * barriers do not work (TCG with one vCPU; see {@link org.jvhost.engine.event.Worker#markUnsettled}) can write its
     * request after our signalUsed read it and then sleep on the old used->idx: this is what wakes it.
     * A spurious interrupt is harmless (virtio 1.2 section 2.7.10). Worker only.
     *
     * @return whether it signalled
     */
    boolean signalIfMissed();

    /** Whether the device's last request was for kicks (enableNotifications, or none yet). */
    boolean deviceWantsKicks();

    /**
     * Whether the driver is asked not to kick at all now (strict mode's kick rule): see the layouts'
     * own descriptions. Worker only.
     */
    boolean kicksSuppressed();

    /** How many times kicks were requested again since the queue was made (strict mode's kick rule). */
    int kickRequests();

    /**
     * A free-running 16-bit count of what the driver has made available as far as the queue can see
     * now, in the units of {@link #nextAvail()}: equal to {@code nextAvail()} when nothing is pending,
     * and moving whenever the driver adds buffers (for a poller that only wants to know that).
     */
    int availIndex();

    /**
     * Sets how a completion from another thread reaches the worker: {@code wake} posts
     * {@link #drainCompletions()} to it. Without one, completions wait for an explicit drain.
     */
    void setCompletionWake(Runnable wake);

    /**
     * Publishes the deferred chains completed so far and signals the driver once (see
     * {@link org.jvhost.spi.Completion} for the order). Worker only, between device callbacks.
     *
     * @return how many were published
     */
    int drainCompletions();

    /**
     * The ring stopped for good: completions from now on are dropped without touching guest memory.
     * Worker only.
     *
     * @return how many deferred chains were still outstanding and will never be published
     */
    int closeDeferred();

    /**
     * How many chains in flight before a restart wait to be popped again: 0 without inflight tracking,
     * so always 0 on a packed ring (a device asking for tracking is not offered packed rings).
     */
    int replayPending();

    /**
     * What GET_VRING_BASE reports for this queue (the spec's "vring base"): the split ring's next avail
     * index; the packed ring's avail and used positions with their wrap counters.
     */
    default int vringBase() {
        return nextAvail() & 0xffff;
    }
}
