package org.jvhost.engine.virtq;

import java.util.concurrent.atomic.AtomicInteger;
import org.jvhost.engine.memory.GuestMemoryMap;
import org.jvhost.spi.GuestMemory;
import org.jvhost.spi.Completion;

/**
 * The handle of one deferred chain ({@link org.jvhost.spi.Virtqueue#defer}): its head, where its writable part lies in
 * guest memory (for the dirty log), and the result once a thread completes it. One per head, reused:
 * a head is deferred again only after the driver saw it used, which is after the worker published it.
 *
 * <p>State: FREE, then PENDING (deferred, worker), then DONE (complete(), any thread, one CAS), then
 * FREE again when the worker has published it. {@code written} and {@code next} are written by the
 * completing thread before it pushes the handle with a CAS ({@link DeferredChains#completed}), and read
 * by the worker after its getAndSet of the same reference: that pair orders them.
 */
final class PendingChain implements Completion {
    static final int FREE = 0;
    static final int PENDING = 1;
    static final int DONE = 2;

    private final DeferredChains owner;
    final int head;
    final AtomicInteger state = new AtomicInteger(FREE);
    /** Guest addresses and lengths of the writable segments, grown to the longest chain seen (worker). */
    long[] writableGpa = new long[4];
    int[] writableLen = new int[4];
    int writableSegments;
    private int writableBytes;
    int written;
    PendingChain next;
    /**
     * The guest memory the device's buffers point into, held until it completes ({@link GuestMemoryMap#hold}),
     * even past a stop or a memory update that gave up waiting for it.
     */
    private GuestMemoryMap memory;

    PendingChain(DeferredChains owner, int head) {
        this.owner = owner;
        this.head = head;
    }

    /**
     * Takes the writable part of {@code c}, holds {@code memory} (the queue's, which {@code c} points
     * into) and marks the handle pending. Worker only.
     */
    void take(SplitDescriptorChain c, GuestMemory memory) {
        int n = c.segmentCount() - c.readableSegments();
        if (n > writableGpa.length) {
            writableGpa = new long[Integer.highestOneBit(n) * 2];
            writableLen = new int[writableGpa.length];
        }
        for (int i = 0; i < n; i++) {
            writableGpa[i] = c.guestAddress(c.readableSegments() + i);
            writableLen[i] = c.segmentLength(c.readableSegments() + i);
        }
        writableSegments = n;
        writableBytes = c.writableBytes();
        written = 0;
        next = null;
        // a fake memory in tests has no mappings to hold
        this.memory = memory instanceof GuestMemoryMap ? (GuestMemoryMap) memory : null;
        if (this.memory != null) {
            this.memory.hold();
        }
        state.set(PENDING);
    }

    /** Marks in {@code log} the {@link #written} bytes of the writable part, as addUsed does. Worker only. */
    void logWritten(RingLog log) {
        int left = written;
        for (int i = 0; left > 0 && i < writableSegments; i++) {
            int n = Math.min(left, writableLen[i]);
            log.written(writableGpa[i], n);
            left -= n;
        }
    }

    @Override
    public int head() {
        return head;
    }

    @Override
    public int writableBytes() {
        return writableBytes;
    }

    @Override
    public void complete(int writtenBytes) {
        if (writtenBytes < 0 || writtenBytes > writableBytes) {
            throw new IllegalArgumentException("chain " + head + " has " + writableBytes
                    + " writable bytes, the device reports " + writtenBytes + " written");
        }
        if (!state.compareAndSet(PENDING, DONE)) {
            throw new IllegalStateException("chain " + head + " was completed already");
        }
        written = writtenBytes;
        GuestMemoryMap held = memory;
        memory = null;
        if (held != null) {
            held.release(); // the device is done with its buffers: a mapping that left the table may go now
        }
        owner.completed(this);
    }

    @Override
    public String toString() {
        return "deferred chain " + head;
    }
}
