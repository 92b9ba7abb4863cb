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
    /**
     * Descriptors per 64-byte cache line. The spec asks only 16-byte alignment of the ring; Linux and
     * DPDK allocate it page-aligned, so positions 4k to 4k+3 share a line.
     */
    private static final int LINE = 4;

    private static final VarHandle U16 = MethodHandles.byteBufferViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle U32 = MethodHandles.byteBufferViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);

    private final int index;
    private final int size;
    private final long descGpa;
    private final long driverGpa;
    private final long deviceGpa;
    private final PackedChainReader reader;
    /** The used position and the batch of used descriptors held back until {@link #publishUsed}. */
    private final PackedUsedRing used;
    /** The driver and device areas: kicks asked for or not, interrupts sent or skipped. */
    private final PackedEventSuppression events;

    private GuestMemory memory;
    /** As in {@link SplitQueue}: a region's file may shrink, so {@link #availIndex} raises its fault. */
    private boolean mayFault;
    private ByteBuffer desc;

    /** Ring position of the next buffer to take, and the avail wrap counter. */
    private int availPos;
    private boolean availWrap;
    /** Descriptors taken, free-running 16-bit (what {@link #nextAvail} reports). */
    private int availCount;

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
     * Descriptors seen available from {@link #availPos} on (with an acquire load of their flags), and
     * where the scan goes on. {@link #pop} takes a buffer whose first entry lies in this span without
     * checking its flags again; when the span is empty it checks the rest of the 64-byte line of four
     * descriptors at once ({@link #scan}), as DPDK's vhost checks a batch.
     */
    private int scanAhead;
    private int scanPos;
    private boolean scanWrap;

    private RingLog log;

    private volatile String brokenReason;
    private volatile boolean enabled = true;
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
        RingAreas.checkAligned(index, "descriptor ring", descGpa, 16);
        RingAreas.checkAligned(index, "driver area", driverGpa, 4);
        RingAreas.checkAligned(index, "device area", deviceGpa, 4);
        this.index = index;
        this.size = size;
        this.descGpa = descGpa;
        this.driverGpa = driverGpa;
        this.deviceGpa = deviceGpa;
        this.reader = new PackedChainReader(this::fail, size, VirtioFeatures.has(features, VirtioFeatures.RING_INDIRECT_DESC));
        this.used = new PackedUsedRing(size, descGpa, VirtioFeatures.has(features, VirtioFeatures.IN_ORDER));
        this.events = new PackedEventSuppression(size, VirtioFeatures.has(features, VirtioFeatures.RING_EVENT_IDX),
                deviceGpa, notifier);
        this.outstanding = new int[size];
        this.popId = new int[size];
        this.deferred = new DeferredChains(index, size, this::addUsedDeferred, this::signalUsed);
        String problem = resolveRings(memory);
        if (problem != null) {
            throw new IllegalArgumentException("queue " + index + ": " + problem);
        }
        setBase(base);
    }

    /**
     * Takes the positions from a vring base: avail in bits 0-15, used in bits 16-31, each a 15-bit
     * position with its wrap counter in the top bit (QEMU's virtio_queue_packed_get_last_avail_idx).
     * A front-end that sends only the avail half (DPDK's virtio_user) stopped with nothing in flight,
     * so used equals avail, as DPDK's vhost library also assumes.
     */
    private void setBase(int base) {
        int avail = base & 0xffff;
        int usedBase = base >>> 16 == 0 ? avail : base >>> 16;
        availPos = avail & 0x7fff;
        availWrap = (avail & 0x8000) != 0;
        used.setPosition(usedBase & 0x7fff, (usedBase & 0x8000) != 0);
        if (availPos >= size || used.position() >= size) {
            throw new IllegalArgumentException(String.format("queue %d: vring base 0x%x names a position past "
                    + "the ring of %d descriptors", index, base, size));
        }
        if (!PackedDescriptorLayout.isAvailable(flagsAt(availPos), availWrap)) {
            resyncIfStale(base);
        }
        events.restart(used.position(), used.wrap());
        resetScan();
    }

    /**
     * No buffer waits at the base's position: the base may be one the front-end could not update, as
     * QEMU's after a back-end vanished (see {@link PackedRingScan}). If the descriptor flags name one
     * position that differs, the ring resumes there, with a log line; otherwise the base stands.
     */
    private void resyncIfStale(int base) {
        int found = PackedRingScan.resumePoint(desc, size);
        int given = vringBase();
        if (found == -1 || found == given) {
            return;
        }
        LOG.warn("queue {}: vring base 0x{} does not match the ring (a front-end that lost its back-end "
                + "cannot know where it stopped); resuming at 0x{}, where the descriptor flags say the device "
                + "stands", index, Integer.toHexString(base), Integer.toHexString(found));
        availPos = found & 0x7fff;
        availWrap = (found & 0x8000) != 0;
        used.setPosition(availPos, availWrap);
    }

    /** Points the ring buffers into {@code newMemory}; null on success, else what is wrong. */
    private String resolveRings(GuestMemory newMemory) {
        ByteBuffer d = RingAreas.window(newMemory, descGpa, PackedDescriptorLayout.ringBytes(size));
        ByteBuffer dr = RingAreas.window(newMemory, driverGpa, EventSuppressLayout.SIZE);
        ByteBuffer dv = RingAreas.window(newMemory, deviceGpa, EventSuppressLayout.SIZE);
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
        used.attach(d);
        events.attach(dr, dv);
        return null;
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
        if (used.pending()) {
            publishUsed(); // the held-back used entries are written, and marked, under the log they were made in
        }
        if (log != null) {
            log.flush();
        }
        log = next;
    }

    @Override public RingLog log() { return log; }
    @Override public void setNotifier(CallNotifier n) { events.setNotifier(n); }
    @Override public void setErrorNotifier(CallNotifier n) { this.errorNotifier = n == null ? CallNotifier.NONE : n; }
    @Override public void setEnabled(boolean enabled) { this.enabled = enabled; }
    @Override public int index() { return index; }
    @Override public int size() { return size; }
    @Override public GuestMemory memory() { return memory; }
    @Override public boolean isEnabled() { return enabled; }
    @Override public boolean isBroken() { return brokenReason != null; }
    @Override public String brokenReason() { return brokenReason; }
    @Override public int nextAvail() { return availCount; }
    @Override public int nextUsed() { return used.count(); }
    @Override public boolean isHostPolling() { return events.hostPolling(); }
    @Override public boolean deviceWantsKicks() { return events.deviceWantsKicks(); }
    @Override public int kickRequests() { return events.kickRequests(); }

    /**
     * Whether the device event suppression says DISABLE now: the host polls, or the device turned kicks
     * off. Unlike a split ring with EVENT_IDX, a packed ring's disable is DISABLE whatever was negotiated,
     * so no kick is legal after it (beyond the late ones strict mode forgives).
     */
    @Override
    public boolean kicksSuppressed() {
        return events.kicksSuppressed();
    }

    @Override
    public int vringBase() {
        int avail = availPos | (availWrap ? 0x8000 : 0);
        return avail | (used.position() | (used.wrap() ? 0x8000 : 0)) << 16;
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
     * Holds back the used descriptor of outstanding buffer {@code id} for {@link #publishUsed} (see
     * {@link PackedUsedRing#add}); a batch longer than {@link PackedUsedRing#MAX_SHADOW} is published in
     * parts.
     */
    private void addShadow(int id, int writtenBytes) {
        int descriptors = outstanding[id];
        outstanding[id] = 0;
        if (used.add(id, writtenBytes, descriptors)) {
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

    @Override
    public void publishUsed() {
        if (brokenReason != null) {
            used.discard();
            return;
        }
        used.publish(log);
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
        return events.signal(used.position(), used.wrap());
    }

    @Override
    public boolean signalIfMissed() {
        return brokenReason == null && events.signalIfMissed(used.position(), used.wrap());
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
        events.enableKicks(availPos, availWrap, log);
        return PackedDescriptorLayout.isAvailable(flagsAt(availPos), availWrap);
    }

    @Override
    public void setHostPolling(boolean on) {
        events.setHostPolling(on);
        if (brokenReason == null) {
            events.applyHostPolling(availPos, availWrap, log);
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
                index, size, descGpa, driverGpa, deviceGpa, availPos, availWrap ? "w" : "", used.position(),
                used.wrap() ? "w" : "", brokenReason == null ? "" : " broken");
    }
}
