package org.jvhost.engine.virtq;

import static org.jvhost.engine.virtq.PackedDescriptorLayout.F_NEXT;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.jvhost.engine.memory.GuestMemoryMap;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.spi.Completion;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.GuestMemory;
import org.jvhost.spi.MemoryRegion;
import org.jvhost.spi.VirtioFeatures;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The device side of a packed virtqueue (virtio 1.2 section 2.8) over guest memory, behind the same
 * {@link org.jvhost.spi.Virtqueue} contract as {@link SplitQueue}: devices cannot tell the layouts apart.
 *
 * <p>One descriptor ring carries both directions. The device keeps two positions with a wrap counter
 * each: where it takes the next buffer (avail) and where it writes the next used descriptor (used).
 * Both start at 0 with the counter set (section 2.8.1) and, after a restart, where SET_VRING_BASE puts
 * them. A buffer of n ring descriptors (a chain, or one indirect descriptor) is returned with one used
 * descriptor carrying its buffer id, and the used position then skips n entries (section 2.8.6).
 *
 * <p>{@link #nextAvail()}, {@link #nextUsed()} and {@link #availIndex()} count descriptors, free-running
 * modulo 2^16, so the host's polling (which compares them) works as for a split ring;
 * {@link #vringBase()} encodes positions and wrap counters as QEMU and DPDK do.
 *
 * <p>The per-chain paths neither allocate nor throw for anything the driver does: a driver that breaks
 * the ring rules (see {@link PackedChainReader}) puts the queue into the broken state and it stops
 * touching guest memory. Threading as in {@link SplitQueue}.
 */
public final class PackedQueue implements HostQueue {

    private static final Logger LOG = LoggerFactory.getLogger(PackedQueue.class);

    /** Largest packed ring: positions are 15 bits in off_wrap and in the vring base. */
    public static final int MAX_SIZE = 32768;
    /** Most used descriptors held back for {@link #publishUsed}: a longer batch is published in parts. */
    static final int MAX_SHADOW = 256;
    /**
     * Descriptors per 64-byte cache line. The spec asks only 16-byte alignment of the ring; Linux and
     * DPDK allocate it page-aligned, so positions 4k to 4k+3 share a line.
     */
    private static final int LINE = 4;

    private static final VarHandle U16 = MethodHandles.byteBufferViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle U32 = MethodHandles.byteBufferViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle U64 = MethodHandles.byteBufferViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    private final int index;
    private final int size;
    private final long descGpa;
    private final long driverGpa;
    private final long deviceGpa;
    private final boolean eventIdx;
    /** VIRTIO_F_IN_ORDER negotiated: runs of nothing-written buffers are published as one (publishUsed). */
    private final boolean inOrder;
    private final PackedChainReader reader;

    private GuestMemory memory;
    /** As in {@link SplitQueue}: a region's file may shrink, so {@link #availIndex} raises its fault. */
    private boolean mayFault;
    private ByteBuffer desc;
    /** Driver event suppression: the driver's wishes about our notifications. */
    private ByteBuffer driverEvent;
    /** Device event suppression: our wishes about the driver's kicks. */
    private ByteBuffer deviceEvent;

    /** Ring position of the next buffer to take, and the avail wrap counter. */
    private int availPos;
    private boolean availWrap;
    /** Descriptors taken, free-running 16-bit (what {@link #nextAvail} reports). */
    private int availCount;
    /** Ring position of the next used descriptor, and the used wrap counter. */
    private int usedPos;
    private boolean usedWrap;
    /** Descriptors returned, free-running 16-bit. */
    private int usedCount;
    /** Used position and wrap counter at the last notification decision: the "old" of the event check. */
    private int signalledPos;
    private boolean signalledWrap;
    /** signalUsed skipped an interrupt since the last one it sent ({@link #signalIfMissed}). Worker only. */
    private boolean skippedSignal;

    /**
     * Ring descriptors of each outstanding buffer, by buffer id; 0 = not outstanding. A buffer id is
     * below the ring size here (Linux and DPDK number them so; jvhost requires it to track them).
     */
    private final int[] outstanding;
    /** Per pop, modulo size: its buffer id ({@link #unpop} walks back over them, outstanding[id] long each). */
    private final int[] popId;
    private int pops;
    /** Chains popped and not yet returned, the most {@link #unpop} may put back. */
    private int inFlight;
    /** The chains the device completes later ({@link #defer}), keyed by buffer id. */
    private final DeferredChains deferred;

    /**
     * The batch's used descriptors, written to the ring only by {@link #publishUsed}: per entry its ring
     * offset and bytes 8-15 (len, id, flags). Each used descriptor lands in a cache line the driver
     * wrote (the available descriptor it replaces) and may be reading (its next used position), so a
     * store to it waits for the line to come from the driver's CPU. One per frame, between frame
     * copies, those waits come one after another; written together, as DPDK's vhost writes its shadow
     * used ring, a batch's lines are requested side by side.
     */
    private final int[] shadowAt;
    private final long[] shadowWord;
    private int shadowCount;

    /**
     * Descriptors seen available from {@link #availPos} on (with an acquire load of their flags), and
     * where the scan goes on. {@link #pop} takes a buffer whose first entry lies in this span without
     * checking its flags again; when the span is empty it checks the rest of the 64-byte line of four
     * descriptors at once ({@link #scan}), as DPDK's vhost checks a batch.
     */
    private int scanAhead;
    private int scanPos;
    private boolean scanWrap;

    private boolean hostPolling;
    private boolean deviceWantsKicks = true;
    /**
     * The device event suppression word last written, -1 if unknown (new rings): a write of the same
     * word is skipped, so a device that disables kicks for every batch does not store into a cache line
     * the driver reads before each kick. Only the device writes that area (section 2.8.10).
     */
    private int deviceEventWord = -1;
    /** Kick requests since the queue was made ({@link #kickRequests}); not on a per-chain path. */
    private int kickRequests;
    private RingLog log;

    private volatile String brokenReason;
    private volatile boolean enabled = true;
    private volatile CallNotifier notifier;
    private volatile CallNotifier errorNotifier = CallNotifier.NONE;

    /**
     * A live packed queue.
     *
     * @param index     queue index within the device
     * @param size      ring size (1..32768)
     * @param descGpa   guest-physical address of the descriptor ring (16-byte aligned)
     * @param driverGpa guest-physical address of the driver event suppression area (4-byte aligned)
     * @param deviceGpa guest-physical address of the device event suppression area (4-byte aligned)
     * @param features  negotiated virtio features (EVENT_IDX, INDIRECT_DESC matter here)
     * @param memory    guest memory
     * @param base      the vring base ({@link #vringBase()} encoding; used 0 means "as avail")
     * @param notifier  how to signal the driver
     * @throws IllegalArgumentException naming the field if an address is misaligned, an area lies outside
     *                                  guest memory, the size is out of range or the base names a position
     *                                  past the ring
     */
    public PackedQueue(int index, int size, long descGpa, long driverGpa, long deviceGpa, long features,
                       GuestMemory memory, int base, CallNotifier notifier) {
        if (size < 1 || size > MAX_SIZE) {
            throw new IllegalArgumentException("queue " + index + ": packed ring size " + size + " is not in 1.." + MAX_SIZE);
        }
        // virtio 1.2 section 2.8.10.1 (table): descriptor ring 16, driver and device areas 4 bytes.
        checkAligned(index, "descriptor ring", descGpa, 16);
        checkAligned(index, "driver area", driverGpa, 4);
        checkAligned(index, "device area", deviceGpa, 4);
        this.index = index;
        this.size = size;
        this.descGpa = descGpa;
        this.driverGpa = driverGpa;
        this.deviceGpa = deviceGpa;
        this.eventIdx = VirtioFeatures.has(features, VirtioFeatures.RING_EVENT_IDX);
        this.inOrder = VirtioFeatures.has(features, VirtioFeatures.IN_ORDER);
        this.reader = new PackedChainReader(this, size, VirtioFeatures.has(features, VirtioFeatures.RING_INDIRECT_DESC));
        this.notifier = notifier == null ? CallNotifier.NONE : notifier;
        this.outstanding = new int[size];
        this.popId = new int[size];
        this.shadowAt = new int[Math.min(size, MAX_SHADOW)];
        this.shadowWord = new long[shadowAt.length];
        this.deferred = new DeferredChains(index, size, this::addUsedDeferred, this::signalUsed);
        String problem = resolveRings(memory);
        if (problem != null) {
            throw new IllegalArgumentException("queue " + index + ": " + problem);
        }
        setBase(base);
    }

    private static void checkAligned(int index, String field, long gpa, int alignment) {
        if ((gpa & (alignment - 1)) != 0) {
            throw new IllegalArgumentException(String.format("queue %d: %s address 0x%x is not %d-byte aligned",
                    index, field, gpa, alignment));
        }
    }

    /**
     * Takes the positions from a vring base: avail in bits 0-15, used in bits 16-31, each a 15-bit
     * position with its wrap counter in the top bit (QEMU's virtio_queue_packed_get_last_avail_idx).
     * A front-end that sends only the avail half (DPDK's virtio_user) stopped with nothing in flight,
     * so used equals avail, as DPDK's vhost library also assumes.
     */
    private void setBase(int base) {
        int avail = base & 0xffff;
        int used = base >>> 16 == 0 ? avail : base >>> 16;
        availPos = avail & 0x7fff;
        availWrap = (avail & 0x8000) != 0;
        usedPos = used & 0x7fff;
        usedWrap = (used & 0x8000) != 0;
        if (availPos >= size || usedPos >= size) {
            throw new IllegalArgumentException(String.format("queue %d: vring base 0x%x names a position past "
                    + "the ring of %d descriptors", index, base, size));
        }
        if (!PackedDescriptorLayout.isAvailable(flagsAt(availPos), availWrap)) {
            resyncIfStale(base);
        }
        signalledPos = usedPos;
        signalledWrap = usedWrap;
        resetScan();
    }

    /**
     * No buffer waits at the base's position: the base may be one the front-end could not update, as
     * QEMU's after a back-end vanished (see {@link PackedRingScan}). If the descriptor flags name one
     * position that differs, the ring resumes there, with a log line; otherwise the base stands.
     */
    private void resyncIfStale(int base) {
        int found = PackedRingScan.resumePoint(desc, size);
        int given = (availPos | (availWrap ? 0x8000 : 0)) | (usedPos | (usedWrap ? 0x8000 : 0)) << 16;
        if (found == -1 || found == given) {
            return;
        }
        LOG.warn("queue {}: vring base 0x{} does not match the ring (a front-end that lost its back-end "
                + "cannot know where it stopped); resuming at 0x{}, where the descriptor flags say the device "
                + "stands", index, Integer.toHexString(base), Integer.toHexString(found));
        availPos = found & 0x7fff;
        availWrap = (found & 0x8000) != 0;
        usedPos = availPos;
        usedWrap = availWrap;
    }

    /** Points the ring buffers into {@code newMemory}; null on success, else what is wrong. */
    private String resolveRings(GuestMemory newMemory) {
        ByteBuffer d = ring(newMemory, descGpa, PackedDescriptorLayout.ringBytes(size));
        ByteBuffer dr = ring(newMemory, driverGpa, EventSuppressLayout.SIZE);
        ByteBuffer dv = ring(newMemory, deviceGpa, EventSuppressLayout.SIZE);
        if (d == null || dr == null || dv == null) {
            String field = d == null ? "descriptor ring" : dr == null ? "driver area" : "device area";
            long gpa = d == null ? descGpa : dr == null ? driverGpa : deviceGpa;
            return String.format("%s at 0x%x (ring size %d) is not inside one guest memory region", field, gpa, size);
        }
        boolean faults = newMemory instanceof GuestMemoryMap && ((GuestMemoryMap) newMemory).mayFault();
        try {
            U16.getAcquire(d, PackedDescriptorLayout.FLAGS);
            U32.getAcquire(dr, 0);
            U32.getAcquire(dv, 0);
            if (faults) {
                LinuxSys.raisePendingFault();
            }
        } catch (IllegalStateException e) {
            return String.format("descriptor ring 0x%x or an event area is misaligned in host memory", descGpa);
        }
        this.memory = newMemory;
        this.mayFault = faults;
        this.desc = d;
        this.driverEvent = dr;
        this.deviceEvent = dv;
        this.deviceEventWord = -1;
        return null;
    }

    private static ByteBuffer ring(GuestMemory memory, long gpa, long len) {
        if (!memory.contains(gpa, len)) {
            return null;
        }
        MemoryRegion region = memory.regionFor(gpa);
        long offset = gpa - region.guestAddress();
        return region.window(offset).slice(region.windowOffset(offset), (int) len).order(ByteOrder.LITTLE_ENDIAN);
    }

    @Override
    public void updateMemory(GuestMemory newMemory) {
        String problem = resolveRings(newMemory);
        if (problem != null) {
            this.memory = newMemory;
            fail("after a memory update: " + problem);
        }
    }

    @Override
    public void setLog(RingLog next) {
        if (shadowCount > 0) {
            publishUsed(); // the held-back used entries are written, and marked, under the log they were made in
        }
        if (log != null) {
            log.flush();
        }
        log = next;
    }

    @Override public RingLog log() { return log; }
    @Override public void setNotifier(CallNotifier n) { this.notifier = n == null ? CallNotifier.NONE : n; }
    @Override public void setErrorNotifier(CallNotifier n) { this.errorNotifier = n == null ? CallNotifier.NONE : n; }
    @Override public void setEnabled(boolean enabled) { this.enabled = enabled; }
    @Override public int index() { return index; }
    @Override public int size() { return size; }
    @Override public GuestMemory memory() { return memory; }
    @Override public boolean isEnabled() { return enabled; }
    @Override public boolean isBroken() { return brokenReason != null; }
    @Override public String brokenReason() { return brokenReason; }
    @Override public int nextAvail() { return availCount; }
    @Override public int nextUsed() { return usedCount; }
    @Override public boolean isHostPolling() { return hostPolling; }
    @Override public boolean deviceWantsKicks() { return deviceWantsKicks; }
    @Override public int kickRequests() { return kickRequests; }

    /**
     * Whether the device event suppression says DISABLE now: the host polls, or the device turned kicks
     * off. Unlike a split ring with EVENT_IDX, a packed ring's disable is DISABLE whatever was negotiated,
     * so no kick is legal after it (beyond the late ones strict mode forgives).
     */
    @Override
    public boolean kicksSuppressed() {
        return hostPolling || !deviceWantsKicks;
    }

    @Override
    public int vringBase() {
        int avail = availPos | (availWrap ? 0x8000 : 0);
        int used = usedPos | (usedWrap ? 0x8000 : 0);
        return avail | used << 16;
    }

    @Override
    public DescriptorChain newChain() {
        return new SplitDescriptorChain(size);
    }

    /** The flags of ring entry {@code pos}, an acquire load (see {@link #pop}). */
    private int flagsAt(int pos) {
        return Short.toUnsignedInt((short) U16.getAcquire(desc, pos * PackedDescriptorLayout.SIZE
                + PackedDescriptorLayout.FLAGS));
    }

    @Override
    public boolean pop(DescriptorChain chain) {
        SplitDescriptorChain c = (SplitDescriptorChain) chain;
        if (c.capacity() < size) {
            throw new IllegalArgumentException("queue " + index + ": chain made for a smaller ring");
        }
        if (brokenReason != null) {
            return false;
        }
        if (scanAhead == 0 && scan(LINE - (availPos & (LINE - 1))) == 0) {
            return false;
        }
        // Acquire happened in scan (here or in availIndex): the driver writes a buffer's descriptors,
        // then (release) the head's flags, and scan loaded those flags with acquire, which orders our
        // reads of addr, len, id and the chain's other entries after it. This plain load reads the same flags again: the driver
        // does not touch an available descriptor before we return it. The reader takes these flags
        // rather than loading them a third time.
        int flags = Short.toUnsignedInt(desc.getShort(availPos * PackedDescriptorLayout.SIZE
                + PackedDescriptorLayout.FLAGS));
        int descriptors = reader.read(c, desc, availPos, availWrap, flags, memory);
        if (descriptors == 0) {
            return false;
        }
        int id = c.head();
        if (id >= size) {
            return fail(String.format("buffer at ring position %d has id %d >= ring size %d", availPos, id, size));
        }
        if (outstanding[id] != 0) {
            return fail(String.format("buffer at ring position %d reuses id %d, which is still outstanding",
                    availPos, id));
        }
        popId[pops] = id;
        if (++pops == size) { // a compare, not a division: the ring size need not be a power of two
            pops = 0;
        }
        outstanding[id] = descriptors;
        advanceAvail(descriptors);
        inFlight++;
        return true;
    }

    private void advanceAvail(int descriptors) {
        availPos += descriptors;
        if (availPos >= size) {
            availPos -= size;
            availWrap = !availWrap;
        }
        availCount = (availCount + descriptors) & 0xffff;
        scanAhead -= descriptors;
        if (scanAhead <= 0) {
            resetScan();
        }
    }

    /**
     * Goes on checking descriptors for availability from {@link #scanPos}, at most {@code limit} of
     * them, stopping at the first one not available; the span {@link #scanAhead} grows by those found.
     *
     * @return the span's length after the scan
     */
    private int scan(int limit) {
        int ahead = scanAhead;
        int pos = scanPos;
        boolean wrap = scanWrap;
        int end = Math.min(size, ahead + limit);
        while (ahead < end && PackedDescriptorLayout.isAvailable(flagsAt(pos), wrap)) {
            ahead++;
            if (++pos == size) {
                pos = 0;
                wrap = !wrap;
            }
        }
        scanAhead = ahead;
        scanPos = pos;
        scanWrap = wrap;
        return ahead;
    }

    private void resetScan() {
        scanAhead = 0;
        scanPos = availPos;
        scanWrap = availWrap;
    }

    /** Breaks the queue (once) and reports it; returns false for the callers' convenience. */
    boolean fail(String what) {
        if (brokenReason == null) {
            brokenReason = "queue " + index + ": " + what;
            LOG.warn("virtqueue broken, the driver must reset the device: {}", brokenReason);
            errorNotifier.signal();
        }
        return false;
    }

    @Override
    public void unpop(int count) {
        if (count < 0 || count > inFlight) {
            throw new IllegalArgumentException("queue " + index + ": cannot unpop " + count + " chains, "
                    + inFlight + " are popped and not returned");
        }
        if (count == 0) {
            return;
        }
        for (int k = 0; k < count; k++) { // newest first, each back over the ring entries it took
            if (--pops < 0) {
                pops = size - 1;
            }
            int id = popId[pops];
            int descriptors = outstanding[id];
            outstanding[id] = 0;
            availPos -= descriptors;
            if (availPos < 0) {
                availPos += size;
                availWrap = !availWrap;
            }
            availCount = (availCount - descriptors) & 0xffff;
        }
        inFlight -= count;
        resetScan();
    }

    @Override
    public void addUsed(DescriptorChain chain, int writtenBytes) {
        SplitDescriptorChain c = (SplitDescriptorChain) chain;
        if (writtenBytes < 0 || writtenBytes > c.writableBytes()) {
            throw new IllegalArgumentException("queue " + index + ": chain " + c.head() + " has "
                    + c.writableBytes() + " writable bytes, device reports " + writtenBytes + " written");
        }
        if (brokenReason != null) {
            return;
        }
        int id = c.head();
        if (id >= size || outstanding[id] == 0) {
            throw new IllegalArgumentException("queue " + index + ": buffer id " + id + " is not outstanding");
        }
        addShadow(id, writtenBytes);
        if (log != null) {
            log.chainWritten(c, writtenBytes); // the ring entry is marked when publishUsed writes it
        }
        if (inFlight > 0) {
            inFlight--;
        }
    }

    /**
     * Queues the used descriptor of outstanding buffer {@code id} for {@link #publishUsed} at the used
     * position and moves past the ring descriptors the buffer took. A batch longer than
     * {@link #MAX_SHADOW} is published in parts.
     *
     * <p>With IN_ORDER, a buffer with nothing written that follows one with nothing written joins its
     * used descriptor instead: that descriptor, at the run's first position, takes this buffer's id,
     * and the driver skips the run's entries (virtio 1.2, 2.8 "In-order use of descriptors"). The used
     * position moves past this buffer's entries either way.
     */
    private void addShadow(int id, int writtenBytes) {
        int descriptors = outstanding[id];
        outstanding[id] = 0;
        int last = shadowCount - 1;
        if (inOrder && writtenBytes == 0 && last >= 0 && (int) shadowWord[last] == 0) {
            shadowWord[last] = shadowWord[last] & ~(0xffffL << 32) | (long) id << 32;
        } else {
            shadowAt[shadowCount] = usedPos * PackedDescriptorLayout.SIZE;
            shadowWord[shadowCount] = Integer.toUnsignedLong(writtenBytes) | (long) id << 32
                    | (long) PackedDescriptorLayout.usedFlags(usedWrap) << 48;
            shadowCount++;
        }
        usedPos += descriptors;
        if (usedPos >= size) {
            usedPos -= size;
            usedWrap = !usedWrap;
        }
        usedCount = (usedCount + descriptors) & 0xffff;
        if (shadowCount == shadowAt.length) {
            publishUsed();
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

    @Override public int deferredCount() { return deferred.outstanding(); }
    @Override public void setCompletionWake(Runnable wake) { deferred.setWake(wake); }
    @Override public int drainCompletions() { return deferred.drain(); }
    @Override public int closeDeferred() { return deferred.close(); }
    /** Packed rings are never tracked in flight (see {@link HostQueue#replayPending}). */
    @Override public int replayPending() { return 0; }

    /** One deferred buffer's used descriptor (its dirty-log marks first, as in {@link #addUsed}). Worker only. */
    private void addUsedDeferred(PendingChain p) {
        if (brokenReason != null) {
            return;
        }
        addShadow(p.head, p.written);
        if (log != null) {
            p.logWritten(log);
        }
    }

    /** Notes a write to the rings at {@code gpa} for the dirty log, if the ring is logged. */
    private void logRing(long gpa, int len) {
        if (log != null && log.ringLogged()) {
            log.written(gpa, len);
        }
    }

    @Override
    public void publishUsed() {
        if (brokenReason != null) {
            shadowCount = 0;
            return;
        }
        int n = shadowCount;
        if (n > 0) {
            // The later entries' len, id and flags (bytes 8-15) in one plain store each, then the first's
            // len and id, then its flags with release: every store of the batch becomes visible before
            // the first entry's flags, which is what the driver polls (it reads used descriptors in ring
            // order, so it reads the others only after that one). A plain store could let the driver see
            // the first entry used while its id or len, or a later entry, are stale. (With IN_ORDER an
            // entry may stand for a run of buffers: addShadow.)
            for (int i = 1; i < n; i++) {
                U64.set(desc, shadowAt[i] + PackedDescriptorLayout.LEN, shadowWord[i]);
            }
            int at = shadowAt[0];
            long first = shadowWord[0];
            U32.set(desc, at + PackedDescriptorLayout.LEN, (int) first);
            U16.set(desc, at + PackedDescriptorLayout.ID, (short) (first >>> 32));
            U16.setRelease(desc, at + PackedDescriptorLayout.FLAGS, (short) (first >>> 48));
            shadowCount = 0;
            if (log != null) {
                for (int i = 0; i < n; i++) {
                    logRing(descGpa + shadowAt[i], PackedDescriptorLayout.SIZE); // after the writes they mark
                }
            }
        }
        if (log != null) {
            log.flush(); // after the writes it marks, as in SplitQueue.publishUsed
        }
    }

    @Override
    public boolean signalUsed() {
        if (brokenReason != null) {
            return false;
        }
        publishUsed();
        // Full fence (StoreLoad): the used flags must be visible before we read the driver's event
        // suppression. Otherwise the driver may enable notifications, re-check our ring, see nothing
        // used and sleep, while we read its stale DISABLE and skip the call: a lost interrupt.
        VarHandle.fullFence();
        int oldPos = signalledPos;
        boolean oldWrap = signalledWrap;
        signalledPos = usedPos;
        signalledWrap = usedWrap;
        if (oldPos == usedPos && oldWrap == usedWrap) {
            return false;
        }
        return signalIf(driverWants(oldPos, oldWrap));
    }

    @Override
    public boolean signalIfMissed() {
        if (!skippedSignal || brokenReason != null) {
            return false;
        }
        // the entries a waiting driver can still be missing: the last ring-size ones, from this
        // position one lap back
        return signalIf(driverWants(usedPos, !usedWrap));
    }

    /**
     * Whether the driver asks for an interrupt about the used descriptors written since
     * {@code (oldPos, oldWrap)}: with DESC and EVENT_IDX if they include off_wrap's position, else unless
     * its flags say DISABLE.
     */
    private boolean driverWants(int oldPos, boolean oldWrap) {
        int word = (int) U32.getVolatile(driverEvent, 0);
        int flags = (word >>> 16) & 0x3;
        return flags == EventSuppressLayout.DESC && eventIdx
                ? passed(word & 0xffff, oldPos, oldWrap)
                : flags != EventSuppressLayout.DISABLE;
    }

    /** Signals the driver if {@code wanted}; otherwise the skip stays on record ({@link #signalIfMissed}). */
    private boolean signalIf(boolean wanted) {
        if (wanted) {
            notifier.signal();
        }
        skippedSignal = !wanted;
        return wanted;
    }

    /**
     * Whether the used descriptors written since {@code (oldPos, oldWrap)} include the position the
     * driver named in off_wrap (section 2.8.10: notify when the device has written that entry). The
     * positions are put on one line: those of the current used lap as they are, those of the lap
     * before one ring size lower.
     */
    boolean passed(int offWrap, int oldPos, boolean oldWrap) {
        int event = linear(offWrap & 0x7fff, (offWrap & EventSuppressLayout.WRAP) != 0);
        return linear(oldPos, oldWrap) <= event && event < usedPos;
    }

    private int linear(int pos, boolean wrap) {
        return wrap == usedWrap ? pos : pos - size;
    }

    @Override
    public void disableNotifications() {
        if (brokenReason != null) {
            return;
        }
        deviceWantsKicks = false;
        if (!hostPolling) {
            writeDeviceEvent(0, EventSuppressLayout.DISABLE);
        }
    }

    @Override
    public boolean enableNotifications() {
        if (brokenReason != null) {
            return false;
        }
        deviceWantsKicks = true;
        if (!hostPolling) {
            requestKicks();
        }
        return PackedDescriptorLayout.isAvailable(flagsAt(availPos), availWrap);
    }

    /**
     * Asks the driver to kick for the next buffer (with EVENT_IDX: for the one at our avail position),
     * then fences. The caller re-reads the ring after this: the full fence (StoreLoad) makes our request
     * visible before that load, or the driver could add a buffer and read our old DISABLE while we read
     * the old flags: a lost kick and a stalled queue.
     */
    private void requestKicks() {
        kickRequests++;
        if (eventIdx) {
            writeDeviceEvent(availPos | (availWrap ? EventSuppressLayout.WRAP : 0), EventSuppressLayout.DESC);
        } else {
            writeDeviceEvent(0, EventSuppressLayout.ENABLE);
        }
        VarHandle.fullFence();
    }

    private void writeDeviceEvent(int offWrap, int flags) {
        int word = EventSuppressLayout.word(offWrap, flags);
        if (word == deviceEventWord) {
            return;
        }
        U32.set(deviceEvent, 0, word);
        deviceEventWord = word;
        logRing(deviceGpa, EventSuppressLayout.SIZE);
    }

    @Override
    public void setHostPolling(boolean on) {
        hostPolling = on;
        if (brokenReason != null) {
            return;
        }
        if (on) {
            writeDeviceEvent(0, EventSuppressLayout.DISABLE);
        } else if (deviceWantsKicks) {
            requestKicks();
        }
    }

    /**
     * {@link #nextAvail()} plus the descriptors seen available beyond it: the scan goes on from where the
     * last one stopped, so a call with nothing new reads one flags field, like a split ring's avail->idx.
     */
    @Override
    public int availIndex() {
        if (brokenReason != null) {
            return availCount;
        }
        scan(size);
        if (mayFault) {
            LinuxSys.raisePendingFault();
        }
        return (availCount + scanAhead) & 0xffff;
    }

    /** Counts whole buffers available from the avail position (ends of chains), at most a ring's worth. */
    @Override
    public int availableCount() {
        if (brokenReason != null) {
            return 0;
        }
        int buffers = 0;
        int pos = availPos;
        boolean wrap = availWrap;
        for (int seen = 0; seen < size; seen++) {
            int flags = flagsAt(pos);
            if (!PackedDescriptorLayout.isAvailable(flags, wrap)) {
                break;
            }
            if ((flags & F_NEXT) == 0) {
                buffers++;
            }
            if (++pos == size) {
                pos = 0;
                wrap = !wrap;
            }
        }
        return buffers;
    }

    @Override
    public String toString() {
        return String.format("PackedQueue[%d size=%d desc=0x%x driver=0x%x device=0x%x avail=%d%s used=%d%s%s]",
                index, size, descGpa, driverGpa, deviceGpa, availPos, availWrap ? "w" : "", usedPos,
                usedWrap ? "w" : "", brokenReason == null ? "" : " broken");
    }
}
