package org.jvhost.testkit;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.jvhost.engine.virtq.AvailRingLayout;
import org.jvhost.engine.virtq.CallNotifier;
import org.jvhost.engine.virtq.DescriptorLayout;
import org.jvhost.engine.virtq.SplitQueue;
import org.jvhost.engine.virtq.UsedRingLayout;
import org.jvhost.spi.GuestMemory;

/**
 * The DRIVER side of a split virtqueue laid out in a {@link GuestMemory}: it writes descriptors and
 * avail entries as a guest driver would, and reads back the used ring, so a device (or the engine's
 * {@link SplitQueue}) can be tested exactly as a guest would drive it.
 *
 * <p>Buffers come from a data area with a cyclic bump allocator and descriptors are taken round-robin
 * from the table, so a test may add any number of chains over time as long as at most
 * {@link #size()} are outstanding and their buffers fit the data area together. Raw methods
 * ({@link #writeDescriptor}, {@link #setAvailIdx}, {@link #publish}) build hostile rings.
 *
 * <pre>{@code
 * MockSplitQueue driver = MockSplitQueue.create(256);
 * SplitQueue queue = driver.deviceQueue(VirtioFeatures.RING_EVENT_IDX, new CountingNotifier());
 * int head = driver.addChain(new byte[][] {request}, new int[] {4096});
 * // ... let the device serve queue ...
 * MockSplitQueue.UsedElement e = driver.pollUsed();
 * byte[] reply = driver.writtenBytes(e);
 * }</pre>
 */
public final class MockSplitQueue {

    private static final VarHandle U16 = MethodHandles.byteBufferViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);
    /** Data area of {@link #create(int)}. */
    private static final long DEFAULT_DATA = 4L << 20;

    /** One used ring element: the chain's head and the bytes the device wrote into it. */
    public record UsedElement(int id, int len) {
    }

    private final GuestMemory memory;
    private final int size;
    private final long descGpa;
    private final long availGpa;
    private final long usedGpa;
    private final ByteBuffer desc;
    private final ByteBuffer avail;
    private final ByteBuffer used;
    private final DriverBuffers data;

    private int nextDescriptor;
    private int availIdx;
    private int lastSeenUsed;

    /**
     * A driver over rings at the given addresses, with buffers allocated from
     * {@code [dataGpa, dataGpa + dataSize)}. Zeroes the three ring areas.
     */
    public MockSplitQueue(GuestMemory memory, int size, long descGpa, long availGpa, long usedGpa,
                          long dataGpa, long dataSize) {
        if (size < 1 || size > SplitQueue.MAX_SIZE || Integer.bitCount(size) != 1) {
            throw new IllegalArgumentException("ring size " + size + " is not a power of two in 1..32768");
        }
        this.memory = memory;
        this.size = size;
        this.descGpa = descGpa;
        this.availGpa = availGpa;
        this.usedGpa = usedGpa;
        this.desc = GuestAccess.slice(memory, descGpa, (int) DescriptorLayout.tableBytes(size));
        this.avail = GuestAccess.slice(memory, availGpa, (int) AvailRingLayout.bytes(size));
        this.used = GuestAccess.slice(memory, usedGpa, (int) UsedRingLayout.bytes(size));
        this.data = new DriverBuffers(memory, dataGpa, dataSize, "chain with head");
        zero(desc);
        zero(avail);
        zero(used);
    }

    /** A driver in its own {@link FakeGuestMemory}: rings at GPA 0x10000, then a 4 MiB data area. */
    public static MockSplitQueue create(int size) {
        long need = ringArea(size) + DEFAULT_DATA;
        FakeGuestMemory memory = FakeGuestMemory.of(0x10000, (int) need);
        return create(memory, size, 0x10000, need);
    }

    /**
     * A driver whose rings and data area are laid out in {@code [areaGpa, areaGpa + areaSize)} of
     * {@code memory}: descriptor table, avail ring and used ring each page-aligned, then the data area.
     */
    public static MockSplitQueue create(GuestMemory memory, int size, long areaGpa, long areaSize) {
        long avail = areaGpa + roundUp(DescriptorLayout.tableBytes(size));
        long used = avail + roundUp(AvailRingLayout.bytes(size));
        long data = areaGpa + ringArea(size);
        if (data >= areaGpa + areaSize) {
            throw new IllegalArgumentException("area of 0x" + Long.toHexString(areaSize) + " bytes has no room for data");
        }
        return new MockSplitQueue(memory, size, areaGpa, avail, used, data, areaGpa + areaSize - data);
    }

    /** Bytes the three rings take in the layout of {@link #create(GuestMemory, int, long, long)}. */
    public static long ringArea(int size) {
        return roundUp(DescriptorLayout.tableBytes(size)) + roundUp(AvailRingLayout.bytes(size))
                + roundUp(UsedRingLayout.bytes(size));
    }

    private static long roundUp(long n) {
        return DriverBuffers.roundUp(n);
    }

    private static void zero(ByteBuffer b) {
        for (int i = 0; i < b.capacity(); i++) {
            b.put(i, (byte) 0);
        }
    }

    public GuestMemory memory() { return memory; }
    public int size() { return size; }
    public long descGpa() { return descGpa; }
    public long availGpa() { return availGpa; }
    public long usedGpa() { return usedGpa; }
    public long dataGpa() { return data.gpa(); }
    public long dataSize() { return data.size(); }

    /** The engine's device-side queue over these rings, index 0, popping from avail index 0. */
    public SplitQueue deviceQueue(long features, CallNotifier notifier) {
        return deviceQueue(0, features, 0, notifier);
    }

    /** The engine's device-side queue over these rings. */
    public SplitQueue deviceQueue(int index, long features, int nextAvail, CallNotifier notifier) {
        return new SplitQueue(index, size, descGpa, availGpa, usedGpa, features, memory, nextAvail, notifier);
    }

    // ---------------------------------------------------------------- chains

    /**
     * Adds and publishes a chain: one device-readable descriptor per {@code readable} array (its bytes
     * copied in), then one device-writable descriptor per entry of {@code writableLengths}.
     *
     * @return the head descriptor index
     */
    public int addChain(byte[][] readable, int[] writableLengths) {
        int count = readable.length + writableLengths.length;
        DriverBuffers.checkCount(count, size);
        int head = nextDescriptor;
        long[] writable = new long[2 * writableLengths.length];
        for (int k = 0; k < count; k++) {
            int i = (head + k) & (size - 1);
            int flags = k + 1 < count ? DescriptorLayout.F_NEXT : 0;
            int next = (head + k + 1) & (size - 1);
            long addr = data.buffer(k, readable, writableLengths, writable);
            int len = DriverBuffers.length(k, readable, writableLengths);
            flags |= k < readable.length ? 0 : DescriptorLayout.F_WRITE;
            writeDescriptor(i, addr, len, flags, (flags & DescriptorLayout.F_NEXT) != 0 ? next : 0);
        }
        nextDescriptor = (head + count) & (size - 1);
        data.record(head, writable);
        publish(head);
        return head;
    }

    /**
     * Adds and publishes a chain as one descriptor pointing to an indirect table (allocated in the data
     * area) that holds the readable then the writable buffers.
     *
     * @return the head descriptor index
     */
    public int addIndirectChain(byte[][] readable, int[] writableLengths) {
        int count = readable.length + writableLengths.length;
        DriverBuffers.checkCount(count, size); // the descriptor pointing to the table is not a buffer
        long table = data.allocate(count * DescriptorLayout.SIZE);
        long[] writable = new long[2 * writableLengths.length];
        for (int k = 0; k < count; k++) {
            long addr = data.buffer(k, readable, writableLengths, writable);
            int len = DriverBuffers.length(k, readable, writableLengths);
            int flags = (k + 1 < count ? DescriptorLayout.F_NEXT : 0)
                    | (k < readable.length ? 0 : DescriptorLayout.F_WRITE);
            writeDescriptorAt(table + (long) k * DescriptorLayout.SIZE, addr, len, flags, k + 1 < count ? k + 1 : 0);
        }
        int head = nextDescriptor;
        writeDescriptor(head, table, count * DescriptorLayout.SIZE, DescriptorLayout.F_INDIRECT, 0);
        nextDescriptor = (head + 1) & (size - 1);
        data.record(head, writable);
        publish(head);
        return head;
    }

    /**
     * Allocates {@code len} bytes (16-byte aligned) from the data area, wrapping to its start when the
     * end is reached.
     */
    public long allocate(int len) {
        return data.allocate(len);
    }

    /**
     * The writable buffers of the chain at {@code head} (as added by {@link #addChain} or
     * {@link #addIndirectChain}) as guest address, length pairs, e.g. to check which pages a write dirtied.
     */
    public long[] writableBuffers(int head) {
        return data.writable(head);
    }

    /**
     * The first {@code len} bytes the device wrote into the writable buffers of the chain at
     * {@code head} (as added by {@link #addChain} or {@link #addIndirectChain}).
     */
    public byte[] writtenBytes(int head, int len) {
        return data.written(head, len);
    }

    /** The bytes the device reports having written for a used element. */
    public byte[] writtenBytes(UsedElement e) {
        return writtenBytes(e.id(), e.len());
    }

    // ---------------------------------------------------------------- raw ring access

    /** Writes descriptor {@code i} of the descriptor table verbatim (hostile values welcome). */
    public void writeDescriptor(int i, long addr, int len, int flags, int next) {
        int at = i * DescriptorLayout.SIZE;
        desc.putLong(at + DescriptorLayout.ADDR, addr);
        desc.putInt(at + DescriptorLayout.LEN, len);
        desc.putShort(at + DescriptorLayout.FLAGS, (short) flags);
        desc.putShort(at + DescriptorLayout.NEXT, (short) next);
    }

    /** Writes a descriptor at any guest address (an entry of an indirect table). */
    public void writeDescriptorAt(long gpa, long addr, int len, int flags, int next) {
        ByteBuffer b = GuestAccess.slice(memory, gpa, DescriptorLayout.SIZE);
        b.putLong(DescriptorLayout.ADDR, addr);
        b.putInt(DescriptorLayout.LEN, len);
        b.putShort(DescriptorLayout.FLAGS, (short) flags);
        b.putShort(DescriptorLayout.NEXT, (short) next);
    }

    /** Puts {@code head} in the next avail slot and bumps avail->idx (a release store, as a driver does). */
    public void publish(int head) {
        setAvailRingEntry(availIdx & (size - 1), head);
        setAvailIdx(availIdx + 1);
    }

    /** Writes avail ring slot {@code slot} without touching avail->idx. */
    public void setAvailRingEntry(int slot, int head) {
        avail.putShort(AvailRingLayout.entry(slot), (short) head);
    }

    /** Sets avail->idx (and the driver's own count) to {@code idx} mod 2^16. */
    public void setAvailIdx(int idx) {
        availIdx = idx & 0xffff;
        U16.setRelease(avail, AvailRingLayout.IDX, (short) availIdx);
    }

    /** The driver's avail->idx. */
    public int availIdx() {
        return availIdx;
    }

    /** Sets avail->flags (VRING_AVAIL_F_NO_INTERRUPT = {@link AvailRingLayout#F_NO_INTERRUPT}). */
    public void setAvailFlags(int flags) {
        avail.putShort(AvailRingLayout.FLAGS, (short) flags);
    }

    /** Sets used_event (the avail ring's trailing field, EVENT_IDX). */
    public void setUsedEvent(int idx) {
        avail.putShort(AvailRingLayout.usedEvent(size), (short) idx);
    }

    /** avail_event as the device last wrote it (the used ring's trailing field, EVENT_IDX). */
    public int availEvent() {
        return Short.toUnsignedInt(used.getShort(UsedRingLayout.availEvent(size)));
    }

    /** used->flags as the device last wrote it (VRING_USED_F_NO_NOTIFY = {@link UsedRingLayout#F_NO_NOTIFY}). */
    public int usedFlags() {
        return Short.toUnsignedInt(used.getShort(UsedRingLayout.FLAGS));
    }

    /** used->idx (an acquire load, as a driver does). */
    public int usedIdx() {
        return Short.toUnsignedInt((short) U16.getAcquire(used, UsedRingLayout.IDX));
    }

    /** Writes used->idx directly (to simulate a ring left over from before a reboot). */
    public void setUsedIdx(int idx) {
        used.putShort(UsedRingLayout.IDX, (short) idx);
        lastSeenUsed = idx & 0xffff;
    }

    /** The used element at free-running used index {@code i} (slot {@code i mod size}). */
    public UsedElement usedElement(int i) {
        int at = UsedRingLayout.elem(i & (size - 1));
        return new UsedElement(used.getInt(at + UsedRingLayout.ELEM_ID), used.getInt(at + UsedRingLayout.ELEM_LEN));
    }

    /** The next used element published since the last call, or null if the device published none. */
    public UsedElement pollUsed() {
        if (lastSeenUsed == usedIdx()) {
            return null;
        }
        UsedElement e = usedElement(lastSeenUsed);
        lastSeenUsed = (lastSeenUsed + 1) & 0xffff;
        return e;
    }
}
