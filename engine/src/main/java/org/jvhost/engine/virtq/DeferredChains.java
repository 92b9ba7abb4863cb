package org.jvhost.engine.virtq;

import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.jvhost.spi.Completion;
import org.jvhost.spi.GuestMemory;

/**
 * The chains of one queue ({@link SplitQueue} or {@link PackedQueue}) that its device completes later,
 * from any thread ({@link org.jvhost.spi.Virtqueue#defer}). The queue supplies how one completed chain
 * becomes a used element ({@code publish}) and how the batch is signalled ({@code signal}); the rest
 * does not depend on the ring layout.
 *
 * <pre>
 *  worker                          any thread                         worker
 *  defer(chain) -> handle  ---->   handle.complete(n)                 drain(): pop the stack, addUsed
 *  (outstanding++)                 CAS-push onto {@code completed};    each in arrival order, one
 *                                  the push onto an empty stack        signalUsed; outstanding--
 *                                  runs {@code wake} (posts drain)
 * </pre>
 *
 * <p>No allocation per request: handles are pooled by head, the completed stack is intrusive
 * ({@link PendingChain#next}), and the wake runs once per batch (the push that found the stack empty),
 * not per completion. Without a wake (a queue outside a host, in tests) completions wait for
 * {@link #drain()}.
 *
 * <p>After {@link #close()} (the ring stopped for good) a completion is dropped: the engine writes
 * neither the ring nor the dirty log for it. The guest memory the device's buffers point into stays
 * mapped until the device completes ({@link PendingChain#take}), so a device that finishes late writes
 * into memory that is still the guest's, never into an address range mapped again for something else.
 */
final class DeferredChains {
    private final int queueIndex;
    /** Writes one completed chain's used element (not yet visible). Worker only. */
    private final Consumer<PendingChain> publish;
    /** Publishes the used elements and notifies the driver if it wants it. Worker only. */
    private final Runnable signal;
    /** The handle of each head, made on its first defer. Worker only. */
    private final PendingChain[] byHead;
    /** Completed handles, newest first: the Treiber stack the completing threads push onto. */
    private final AtomicReference<PendingChain> completed = new AtomicReference<>();
    private volatile Runnable wake;
    private volatile boolean closed;
    /** Deferred and not yet published or dropped. Worker only. */
    private int outstanding;
    /** Completions dropped because the queue was closed. Worker only. */
    private long dropped;

    DeferredChains(int queueIndex, int size, Consumer<PendingChain> publish, Runnable signal) {
        this.queueIndex = queueIndex;
        this.publish = publish;
        this.signal = signal;
        this.byHead = new PendingChain[size];
    }

    /** Sets what runs when a completion arrives at an empty stack: post {@link #drain()} to the worker. */
    void setWake(Runnable wake) {
        this.wake = wake;
    }

    /** Makes a handle for popped chain {@code c}, which points into {@code memory}. Worker only. */
    Completion defer(SplitDescriptorChain c, GuestMemory memory) {
        if (closed) {
            throw new IllegalStateException("queue " + queueIndex + " is stopped; its chains cannot be deferred");
        }
        int head = c.head();
        PendingChain p = byHead[head];
        if (p == null) {
            p = new PendingChain(this, head);
            byHead[head] = p;
        } else if (p.state.get() != PendingChain.FREE) {
            throw new IllegalStateException("queue " + queueIndex + ": chain " + head
                    + " is already deferred and not yet completed");
        }
        p.take(c, memory);
        outstanding++;
        return p;
    }

    /** {@code p} was completed (any thread): push it and wake the worker if the stack was empty. */
    void completed(PendingChain p) {
        if (closed) {
            return; // the ring is gone; see close()
        }
        PendingChain top;
        do {
            top = completed.get();
            p.next = top;
        } while (!completed.compareAndSet(top, p));
        Runnable w = wake;
        if (top == null && w != null) {
            w.run();
        }
    }

    /**
     * Publishes every completion that has arrived, in arrival order, and signals the driver once.
     * Worker only.
     *
     * @return how many were published
     */
    int drain() {
        PendingChain p = reverse(completed.getAndSet(null));
        int published = 0;
        while (p != null) {
            PendingChain next = p.next;
            p.next = null;
            if (closed) {
                dropped++;
            } else {
                publish.accept(p);
                published++;
            }
            p.state.set(PendingChain.FREE); // the driver reuses the head only after it saw it used
            outstanding--;
            p = next;
        }
        if (published > 0) {
            signal.run();
        }
        return published;
    }

    private static PendingChain reverse(PendingChain p) {
        PendingChain out = null;
        while (p != null) {
            PendingChain next = p.next;
            p.next = out;
            out = p;
            p = next;
        }
        return out;
    }

    /** Deferred chains not yet published. Worker only. */
    int outstanding() {
        return outstanding;
    }

    /** Completions dropped after {@link #close()}. Worker only. */
    long dropped() {
        return dropped;
    }

    /**
     * The ring stopped for good: later completions are dropped, and what is pending now is forgotten.
     * Worker only.
     *
     * @return how many deferred chains were still outstanding (never to be published)
     */
    int close() {
        closed = true;
        int left = outstanding;
        dropped += left;
        outstanding = 0;
        completed.set(null);
        return left;
    }
}
