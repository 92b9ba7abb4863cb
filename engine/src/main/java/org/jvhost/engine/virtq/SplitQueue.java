package org.jvhost.engine.virtq;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.jvhost.engine.memory.GuestMemoryMap;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.spi.Completion;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.GuestMemory;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.spi.Virtqueue;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The device side of a split virtqueue (virtio 1.2 section 2.7) over guest memory.
 *
 * <p>The three ring areas are resolved once (at construction and on {@link #updateMemory}) to small
 * little-endian buffers at their exact guest addresses. The per-chain paths ({@link #pop},
 * {@link #addUsed}, {@link #signalUsed}) then neither allocate nor throw for anything the driver does:
 * a driver that breaks the ring rules puts the queue into the broken state described in
 * {@link Virtqueue}, and the queue stops touching guest memory.
 *
 * <p>Threading: everything except {@link #setNotifier}, {@link #setErrorNotifier},
 * {@link #setEnabled}, {@link #isEnabled}, {@link #isBroken} and {@link #brokenReason} runs on the
 * queue's worker thread.
 */
public final class SplitQueue implements HostQueue {

    private static final Logger LOG = LoggerFactory.getLogger(SplitQueue.class);

    /** Largest split ring (virtio 1.2 section 2.7: "Queue Size ... maximum 32768"). */
    public static final int MAX_SIZE = 32768;
    /** Most used elements held back for {@link #publishUsed}: a longer batch is published in parts. */
    static final int MAX_SHADOW = 256;

    // Ring fields are little-endian whatever the order of the buffer handed to us (indirect tables are
    // read through region windows of any order). Plain get/set works at any alignment; the acquire and
    // release modes need natural alignment, which the constructor verifies for the two index fields.
    private static final VarHandle U16 = MethodHandles.byteBufferViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);

    private final int index;
    private final int size;
    private final int mask;
    private final long descGpa;
    private final long availGpa;
    private final long usedGpa;
    /** VIRTIO_F_IN_ORDER negotiated: runs of nothing-written elements are published as one (writeShadow). */
    private final boolean inOrder;
    /** Follows and checks the chain of a head taken from the avail ring (or resubmitted). */
    private final SplitChainReader reader;
    /** The suppression fields of both rings: kicks asked for or not, interrupts sent or skipped. */
    private final SplitEventSuppression events;

    private GuestMemory memory;
    /**
     * The memory has a region whose file can shrink ({@link GuestMemoryMap#mayFault()}): {@link #availIndex}
     * and the ring check of a memory update then raise a fault of theirs before they return
     * ({@link LinuxSys#raisePendingFault()}). The host reads avail->idx before every kick it delivers, so
     * a ring that vanished fails the device before the device runs, instead of reaching it at some later
     * point of its own code (in the middle of a lock acquisition, say). Not in {@link #pop}: that would
     * cost a native call per chain.
     */
    private boolean mayFault;
    private ByteBuffer desc;
    private ByteBuffer avail;
    private ByteBuffer used;

    /** Next avail ring index to pop (free-running 16-bit). */
    private int nextAvail;
    /** The last avail->idx read; entries between nextAvail and it are known available. */
    private int cachedAvailIdx;
    /** Next used ring index to fill (free-running 16-bit). */
    private int nextUsed;
    /** Chains popped and not yet returned, the most {@link #unpop} may put back. */
    private int inFlight;

    /**
     * The used elements of the batch, written to the ring only by {@link #publishUsed}: per element
     * the head and the length. A used line was last read by the driver on its CPU, so the first store
     * to it waits for the line; one element per chain, between frame copies, those waits come one
     * after another; written together right before used->idx, as DPDK's vhost writes its shadow used
     * ring, a batch's lines are requested side by side.
     */
    private final int[] shadowHead;
    private final int[] shadowLen;
    private int shadowCount;

    /**
     * Where this queue marks what it writes while a migration logs dirty pages; null otherwise, which
     * costs the per-chain paths one null test of a field they already read.
     */
    private RingLog log;
    /** The inflight record (spec "Inflight I/O tracking") of a device that opted in; null otherwise. */
    private InflightRing inflight;

    /** Chains the device completes later, from any thread ({@link #defer}). */
    private final DeferredChains deferred;

    private volatile String brokenReason;
    private volatile boolean enabled = true;
    private volatile CallNotifier errorNotifier = CallNotifier.NONE;

    /**
     * A live queue.
     *
     * @param index     queue index within the device
     * @param size      ring size (power of two, 1..32768)
     * @param descGpa   guest-physical address of the descriptor table (16-byte aligned)
     * @param availGpa  guest-physical address of the avail ring (2-byte aligned)
     * @param usedGpa   guest-physical address of the used ring (4-byte aligned)
     * @param features  negotiated virtio features (EVENT_IDX, INDIRECT_DESC matter here)
     * @param memory    guest memory
     * @param nextAvail the first avail index to pop (SET_VRING_BASE)
     * @param notifier  how to signal the driver
     * @throws IllegalArgumentException naming the field if an address is misaligned, a ring lies outside
     *                                  guest memory, or the size is not a power of two
     */
    public SplitQueue(int index, int size, long descGpa, long availGpa, long usedGpa, long features,
                      GuestMemory memory, int nextAvail, CallNotifier notifier) {
        if (size < 1 || size > MAX_SIZE || Integer.bitCount(size) != 1) {
            throw new IllegalArgumentException("queue " + index + ": ring size " + size
                    + " is not a power of two in 1.." + MAX_SIZE);
        }
        // virtio 1.2 section 2.7: descriptor table 16-byte, driver area 2-byte, device area 4-byte alignment.
        RingAreas.checkAligned(index, "descriptor table", descGpa, 16);
        RingAreas.checkAligned(index, "avail ring", availGpa, 2);
        RingAreas.checkAligned(index, "used ring", usedGpa, 4);
        this.index = index;
        this.size = size;
        this.mask = size - 1;
        this.deferred = new DeferredChains(index, size, this::addUsedDeferred, this::signalUsed);
        this.shadowHead = new int[Math.min(size, MAX_SHADOW)];
        this.shadowLen = new int[shadowHead.length];
        this.descGpa = descGpa;
        this.availGpa = availGpa;
        this.usedGpa = usedGpa;
        this.inOrder = VirtioFeatures.has(features, VirtioFeatures.IN_ORDER);
        this.reader = new SplitChainReader(this::fail, size, VirtioFeatures.has(features, VirtioFeatures.RING_INDIRECT_DESC));
        this.events = new SplitEventSuppression(size, VirtioFeatures.has(features, VirtioFeatures.RING_EVENT_IDX),
                notifier);
        String problem = resolveRings(memory);
        if (problem != null) {
            throw new IllegalArgumentException("queue " + index + ": " + problem);
        }
        this.nextAvail = nextAvail & 0xffff;
        this.cachedAvailIdx = this.nextAvail;
        // Re-read used->idx rather than assume 0: after a guest reboot or a back-end restart the ring
        // keeps its old index, and publishing from 0 would hand the driver stale entries (rust-vmm
        // vhost PR #180/#183, landscape doc section 3).
        this.nextUsed = Short.toUnsignedInt((short) U16.getAcquire(used, UsedRingLayout.IDX));
        events.restart(nextUsed);
    }

    /**
     * Points the ring buffers into {@code newMemory}.
     *
     * @return null on success, else what is wrong (the buffers are then left as they were)
     */
    private String resolveRings(GuestMemory newMemory) {
        ByteBuffer d = RingAreas.window(newMemory, descGpa, DescriptorLayout.tableBytes(size));
        ByteBuffer a = RingAreas.window(newMemory, availGpa, AvailRingLayout.bytes(size));
        ByteBuffer u = RingAreas.window(newMemory, usedGpa, UsedRingLayout.bytes(size));
        if (d == null || a == null || u == null) {
            String field = d == null ? "descriptor table" : a == null ? "avail ring" : "used ring";
            long gpa = d == null ? descGpa : a == null ? availGpa : usedGpa;
            return String.format("%s at 0x%x (ring size %d) is not inside one guest memory region", field, gpa, size);
        }
        boolean faults = newMemory instanceof GuestMemoryMap && ((GuestMemoryMap) newMemory).mayFault();
        try {
            U16.getAcquire(a, AvailRingLayout.IDX);
            U16.getAcquire(u, UsedRingLayout.IDX);
            raiseFaultIf(faults);
        } catch (IllegalStateException e) {
            // Only if a region's host mapping is itself misaligned (a fake memory wrapping an odd slice).
            return String.format("avail ring 0x%x or used ring 0x%x is misaligned in host memory", availGpa, usedGpa);
        }
        this.memory = newMemory;
        this.mayFault = faults;
        this.desc = d;
        this.avail = a;
        this.used = u;
        events.attach(a, u);
        return null;
    }

    /**
     * Swaps in a new guest-memory snapshot (memory hot-plug, SET_MEM_TABLE while running) and re-resolves
     * the rings. If a ring no longer lies in guest memory the queue breaks. Called on the queue's worker.
     */
    public void updateMemory(GuestMemory newMemory) {
        String problem = resolveRings(newMemory);
        if (problem != null) {
            this.memory = newMemory;
            fail("after a memory update: " + problem);
        }
    }

    /**
     * Starts, moves or (with null) stops dirty-page logging: what was noted for the previous log is
     * flushed into it first, so no write is lost across a switch. Worker only.
     */
    public void setLog(RingLog next) {
        if (shadowCount > 0) {
            publishUsed(); // the held-back used entries are written, and marked, under the log they were made in
        }
        if (log != null) {
            log.flush();
        }
        log = next;
    }

    /** The dirty-page log in use, or null. Worker only. */
    public RingLog log() {
        return log;
    }

    /** Replaces the call notifier (SET_VRING_CALL while running). Safe from any thread. */
    public void setNotifier(CallNotifier notifier) {
        events.setNotifier(notifier);
    }

    /**
     * Sets where to report that the queue broke (SET_VRING_ERR's eventfd). It is signalled once, when the
     * queue breaks. Safe from any thread.
     */
    public void setErrorNotifier(CallNotifier notifier) {
        this.errorNotifier = notifier == null ? CallNotifier.NONE : notifier;
    }

    /** Sets the enabled flag the device sees. A new queue is enabled. Safe from any thread. */
    public void setEnabled(boolean enabled) {
        this.enabled = enabled;
    }

    @Override public int index() { return index; }
    @Override public int size() { return size; }
    @Override public GuestMemory memory() { return memory; }
    @Override public boolean isEnabled() { return enabled; }
    @Override public boolean isBroken() { return brokenReason != null; }
    @Override public String brokenReason() { return brokenReason; }
    @Override public int nextAvail() { return nextAvail; }
    @Override public int nextUsed() { return nextUsed; }

    @Override
    public DescriptorChain newChain() {
        return new SplitDescriptorChain(size);
    }

    private static void raiseFaultIf(boolean mayFault) {
        if (mayFault) {
            LinuxSys.raisePendingFault();
        }
    }

    @Override
    public boolean pop(DescriptorChain chain) {
        SplitDescriptorChain c = (SplitDescriptorChain) chain;
        if (c.capacity() < size) {
            throw new IllegalArgumentException("queue " + index + ": chain made for a smaller ring");
        }
        // a device that did not opt into inflight tracking pays this one null check
        return inflight == null ? popAvailable(c) : popTracked(c);
    }

    /** Takes the next chain from the avail ring. */
    private boolean popAvailable(SplitDescriptorChain c) {
        if (brokenReason != null || !hasAvailable()) {
            return false;
        }
        int slot = nextAvail & mask;
        int head = Short.toUnsignedInt((short) U16.get(avail, AvailRingLayout.entry(slot)));
        if (head >= size) {
            return fail(String.format("avail ring entry %d (avail index %d) holds head %d >= ring size %d",
                    slot, nextAvail, head, size));
        }
        if (!reader.read(c, desc, head, memory)) {
            return false;
        }
        nextAvail = (nextAvail + 1) & 0xffff;
        inFlight++;
        return true;
    }

    /** Inflight tracking: the chains in flight before a restart first, then the avail ring, each recorded. */
    private boolean popTracked(SplitDescriptorChain c) {
        if (inflight.hasResubmit()) {
            return resubmit(c);
        }
        if (!popAvailable(c)) {
            return false;
        }
        inflight.popped(c.head());
        return true;
    }

    /**
     * Starts recording chains in flight in {@code record} (before the queue runs). Chains the record
     * holds from before a restart are popped again first; the next avail index becomes used->idx plus
     * their count (spec: "the back-end [...] can use the used_idx [...] to recover").
     *
     * @return how many chains were in flight
     */
    public int trackInflight(InflightRing record) {
        inflight = record;
        int inUse = record.recover(nextUsed, slot -> used.getInt(UsedRingLayout.elem(slot) + UsedRingLayout.ELEM_ID));
        if (inUse > 0) {
            nextAvail = (nextUsed + inUse) & 0xffff;
            cachedAvailIdx = nextAvail;
        }
        return inUse;
    }

    @Override
    public int replayPending() {
        return inflight == null ? 0 : inflight.resubmitCount();
    }

    /** Pops a chain that was in flight before a restart, by its head. */
    private boolean resubmit(SplitDescriptorChain c) {
        if (brokenReason != null || !reader.read(c, desc, inflight.nextResubmit(), memory)) {
            return false;
        }
        inFlight++;
        return true;
    }

    /** True if an entry is available; reads avail->idx only once the entries seen last time are used up. */
    private boolean hasAvailable() {
        return cachedAvailIdx != nextAvail || readAvailIdx() > 0;
    }

    /**
     * Reads avail->idx and validates it.
     *
     * @return the number of available entries, or -1 if the index is impossible (the queue then breaks)
     */
    private int readAvailIdx() {
        // Acquire: the ring entries and descriptors the driver wrote before bumping idx must be read
        // after idx. A plain load could be reordered (or hoisted out of the polling loop by the JIT), so
        // we would see the new idx but a descriptor the driver had not finished writing.
        int idx = Short.toUnsignedInt((short) U16.getAcquire(avail, AvailRingLayout.IDX));
        int pending = (idx - nextAvail) & 0xffff;
        if (pending > size) {
            fail(String.format("avail index %d is %d ahead of next avail %d, more than the ring size %d",
                    idx, pending, nextAvail, size));
            return -1;
        }
        cachedAvailIdx = idx;
        return pending;
    }

    /** Breaks the queue (once) and reports it; returns false for the callers' convenience. */
    private boolean fail(String what) {
        if (brokenReason == null) {
            brokenReason = "queue " + index + ": " + what;
            LOG.warn("virtqueue broken, the driver must reset the device: {}", brokenReason);
            errorNotifier.signal();
        }
        return false;
    }

    @Override
    public void unpop(int count) {
        if (inflight != null) {
            throw new UnsupportedOperationException("queue " + index + ": unpop on a queue whose chains are "
                    + "tracked in flight");
        }
        if (count < 0 || count > inFlight) {
            throw new IllegalArgumentException("queue " + index + ": cannot unpop " + count + " chains, "
                    + inFlight + " are popped and not returned");
        }
        nextAvail = (nextAvail - count) & 0xffff;
        inFlight -= count;
    }

    @Override
    public void addUsed(DescriptorChain chain, int writtenBytes) {
        SplitDescriptorChain c = (SplitDescriptorChain) chain;
        if (writtenBytes < 0 || writtenBytes > c.writableBytes()) {
            throw new IllegalArgumentException("queue " + index + ": chain " + c.head() + " has "
                    + c.writableBytes() + " writable bytes, device reports " + writtenBytes + " written");
        }
        if (brokenReason != null) {
            return; // a broken queue no longer writes guest memory
        }
        if (log != null) {
            // the used length is what the device says it wrote: exactly the bytes to mark
            log.chainWritten(c, writtenBytes);
            log.usedWritten(UsedRingLayout.elem(nextUsed & mask), UsedRingLayout.ELEM);
        }
        addShadow(c.head(), writtenBytes);
        if (inflight != null) {
            inflight.used(c.head());
        }
        if (inFlight > 0) {
            inFlight--;
        }
    }

    @Override
    public Completion defer(DescriptorChain chain) {
        Completion handle = deferred.defer((SplitDescriptorChain) chain, memory);
        if (inFlight > 0) {
            inFlight--; // no longer unpop-able
        }
        return handle;
    }

    @Override
    public int deferredCount() {
        return deferred.outstanding();
    }

    @Override
    public void setCompletionWake(Runnable wake) {
        deferred.setWake(wake);
    }

    @Override
    public int drainCompletions() {
        return deferred.drain();
    }

    @Override
    public int closeDeferred() {
        return deferred.close();
    }

    /** One deferred chain's used element (its dirty-log marks first, as in {@link #addUsed}). Worker only. */
    void addUsedDeferred(PendingChain p) {
        if (brokenReason != null) {
            return;
        }
        if (inflight != null) {
            inflight.used(p.head); // cleared once published, as for addUsed
        }
        if (log != null) {
            p.logWritten(log);
            log.usedWritten(UsedRingLayout.elem(nextUsed & mask), UsedRingLayout.ELEM);
        }
        addShadow(p.head, p.written);
    }

    /** Queues a used element for {@link #publishUsed} and moves the used index on. */
    private void addShadow(int head, int writtenBytes) {
        shadowHead[shadowCount] = head;
        shadowLen[shadowCount] = writtenBytes;
        nextUsed = (nextUsed + 1) & 0xffff;
        if (++shadowCount == shadowHead.length) {
            publishUsed();
        }
    }

    /**
     * Writes the held-back used elements, the last of them at slot nextUsed - 1. With IN_ORDER a run of
     * elements with nothing written is one element, at the run's first slot, carrying the run's last
     * head (virtio 1.2, 2.7 "In-order use of descriptors"): the driver learns from it that every
     * buffer up to that one is used, and used->idx still counts each of them.
     */
    private void writeShadow() {
        int n = shadowCount;
        int slot = nextUsed - n;
        for (int i = 0; i < n; ) {
            int last = inOrder ? UsedRuns.end(shadowLen, i, n) : i;
            int at = UsedRingLayout.elem((slot + i) & mask);
            used.putInt(at + UsedRingLayout.ELEM_ID, shadowHead[last]);
            used.putInt(at + UsedRingLayout.ELEM_LEN, shadowLen[last]);
            i = last + 1;
        }
        shadowCount = 0;
    }

    @Override
    public void publishUsed() {
        if (brokenReason != null) {
            shadowCount = 0;
            return;
        }
        writeShadow();
        // Release: the used elements written just now become visible before the new index. Otherwise
        // the driver could see an index covering an element that still holds a stale id and length.
        U16.setRelease(used, UsedRingLayout.IDX, (short) nextUsed);
        if (inflight != null) {
            inflight.published(nextUsed); // after used->idx: a chain is cleared once the driver can see it
        }
        if (log != null) {
            // after the writes they mark: a bit set first could be cleared, and the page sent, before them
            log.usedWritten(UsedRingLayout.IDX, 2);
            log.flush();
        }
    }

    @Override
    public boolean signalUsed() {
        if (brokenReason != null) {
            return false;
        }
        publishUsed();
        return events.signal(nextUsed);
    }

    @Override
    public boolean signalIfMissed() {
        return brokenReason == null && events.signalIfMissed();
    }

    @Override
    public void disableNotifications() {
        if (brokenReason != null) {
            return;
        }
        events.disableKicks(log);
    }

    @Override
    public boolean enableNotifications() {
        if (brokenReason != null) {
            return false;
        }
        events.enableKicks(nextAvail, log);
        return readAvailIdx() > 0;
    }

    /**
     * Host-controlled polling (the worker's adaptive busy-poll, like vhost-net's busyloop). While on, the
     * driver is asked not to kick at all (see {@link SplitEventSuppression#applyHostPolling}), and the
     * device's {@link #disableNotifications}/{@link #enableNotifications} then leave the ring alone.
     * Turning it on again rewrites the suppression (a refresh after a wrap of avail_event).
     *
     * <p>Turning it off restores what the device asked for last: if that was kicks, they are requested
     * again and fenced, and the caller MUST then re-read avail->idx ({@link #availIndex}) and process
     * anything published meanwhile, since the driver may have skipped its kick just before (the usual
     * disable, drain, enable, re-check of virtio 1.2 section 2.7.10). Worker only.
     */
    public void setHostPolling(boolean on) {
        events.setHostPolling(on);
        if (brokenReason == null) {
            events.applyHostPolling(nextAvail, log);
        }
    }

    /** Whether the host polls this queue ({@link #setHostPolling}). */
    public boolean isHostPolling() {
        return events.hostPolling();
    }

    /** Whether the device's last request was for kicks (enableNotifications, or none yet). */
    public boolean deviceWantsKicks() {
        return events.deviceWantsKicks();
    }

    /** See {@link SplitEventSuppression#kicksSuppressed}. Worker only. */
    @Override
    public boolean kicksSuppressed() {
        return events.kicksSuppressed();
    }

    /** How many times kicks were requested again since the queue was made; see {@link #kicksSuppressed}. */
    @Override
    public int kickRequests() {
        return events.kickRequests();
    }

    /** Whether VIRTIO_F_RING_EVENT_IDX was negotiated. */
    public boolean eventIdx() {
        return events.eventIdx();
    }

    /**
     * The driver's avail->idx as it is now (an acquire load, not validated), for a poller that only
     * wants to know whether it moved. A broken queue no longer reads guest memory and returns the last
     * index it read.
     */
    public int availIndex() {
        if (brokenReason != null) {
            return cachedAvailIdx;
        }
        int idx = Short.toUnsignedInt((short) U16.getAcquire(avail, AvailRingLayout.IDX));
        raiseFaultIf(mayFault);
        return idx;
    }

    @Override
    public int availableCount() {
        if (brokenReason != null) {
            return 0;
        }
        return Math.max(0, readAvailIdx()) + (inflight == null ? 0 : inflight.resubmitCount());
    }

    @Override
    public String toString() {
        return String.format("SplitQueue[%d size=%d desc=0x%x avail=0x%x used=0x%x nextAvail=%d nextUsed=%d%s]",
                index, size, descGpa, availGpa, usedGpa, nextAvail, nextUsed,
                brokenReason == null ? "" : " broken");
    }
}
