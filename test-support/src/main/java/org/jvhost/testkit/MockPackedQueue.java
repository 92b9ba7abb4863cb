package org.jvhost.testkit;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayDeque;
import java.util.Deque;
import org.jvhost.engine.virtq.CallNotifier;
import org.jvhost.engine.virtq.EventSuppressLayout;
import org.jvhost.engine.virtq.PackedDescriptorLayout;
import org.jvhost.engine.virtq.PackedQueue;
import org.jvhost.spi.GuestMemory;

/**
 * The DRIVER side of a packed virtqueue laid out in a {@link GuestMemory}, next to
 * {@link MockSplitQueue}: it makes buffers available as a guest driver does (later descriptors first,
 * the first one's flags last with a release store, the buffer id in every descriptor) and reads used
 * descriptors back, skipping as many ring entries as each buffer took. Raw methods
 * ({@link #writeDescriptor}, {@link #setDriverEvent}) build hostile rings.
 *
 * <pre>{@code
 * MockPackedQueue driver = MockPackedQueue.create(256);
 * PackedQueue queue = driver.deviceQueue(VirtioFeatures.RING_EVENT_IDX, new CountingNotifier());
 * int id = driver.addChain(new byte[][] {request}, new int[] {4096});
 * // ... let the device serve queue ...
 * MockSplitQueue.UsedElement e = driver.pollUsed();
 * }</pre>
 */
public final class MockPackedQueue {

    private static final VarHandle U16 = MethodHandles.byteBufferViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);
    private static final long PAGE = DriverBuffers.PAGE;
    private static final long DEFAULT_DATA = 4L << 20;

    private final GuestMemory memory;
    private final int size;
    private final long descGpa;
    private final long driverGpa;
    private final long deviceGpa;
    private final ByteBuffer desc;
    private final ByteBuffer driverEvent;
    private final ByteBuffer deviceEvent;
    private final DriverBuffers data;
    private final Deque<Integer> freeIds = new ArrayDeque<>();
    private final int[] entriesById;

    private int availPos;
    private boolean availWrap = true;
    private int usedPos;
    private boolean usedWrap = true;

    private MockPackedQueue(GuestMemory memory, int size, long areaGpa, long areaSize) {
        if (size < 1 || size > PackedQueue.MAX_SIZE) {
            throw new IllegalArgumentException("ring size " + size + " is not in 1.." + PackedQueue.MAX_SIZE);
        }
        this.memory = memory;
        this.size = size;
        this.descGpa = areaGpa;
        this.driverGpa = areaGpa + roundUp(PackedDescriptorLayout.ringBytes(size));
        this.deviceGpa = driverGpa + PAGE;
        this.desc = GuestAccess.slice(memory, descGpa, (int) PackedDescriptorLayout.ringBytes(size));
        this.driverEvent = GuestAccess.slice(memory, driverGpa, EventSuppressLayout.SIZE);
        this.deviceEvent = GuestAccess.slice(memory, deviceGpa, EventSuppressLayout.SIZE);
        long dataGpa = areaGpa + ringArea(size);
        if (dataGpa >= areaGpa + areaSize) {
            throw new IllegalArgumentException("area of 0x" + Long.toHexString(areaSize) + " bytes has no room for data");
        }
        this.data = new DriverBuffers(memory, dataGpa, areaGpa + areaSize - dataGpa, "buffer with id");
        this.entriesById = new int[size];
        for (int i = 0; i < size; i++) {
            freeIds.add(i);
            desc.putLong(i * PackedDescriptorLayout.SIZE, 0);
            desc.putLong(i * PackedDescriptorLayout.SIZE + 8, 0);
        }
        driverEvent.putInt(0, 0);
        deviceEvent.putInt(0, 0);
    }

    /** A driver in its own {@link FakeGuestMemory}: rings at GPA 0x10000, then a 4 MiB data area. */
    public static MockPackedQueue create(int size) {
        long need = ringArea(size) + DEFAULT_DATA;
        return create(FakeGuestMemory.of(0x10000, (int) need), size, 0x10000, need);
    }

    /** A driver whose descriptor ring, event areas (a page each) and data live in {@code [areaGpa, +areaSize)}. */
    public static MockPackedQueue create(GuestMemory memory, int size, long areaGpa, long areaSize) {
        return new MockPackedQueue(memory, size, areaGpa, areaSize);
    }

    /** Bytes the ring and the two event areas take before the data area. */
    public static long ringArea(int size) {
        return roundUp(PackedDescriptorLayout.ringBytes(size)) + 2 * PAGE;
    }

    private static long roundUp(long n) {
        return DriverBuffers.roundUp(n);
    }

    public GuestMemory memory() { return memory; }
    public int size() { return size; }
    public long descGpa() { return descGpa; }
    public long driverGpa() { return driverGpa; }
    public long deviceGpa() { return deviceGpa; }

    /** The engine's device-side queue over these rings, index 0, from the start of the ring. */
    public PackedQueue deviceQueue(long features, CallNotifier notifier) {
        return deviceQueue(0, features, vringBase(), notifier);
    }

    /** The engine's device-side queue over these rings, starting at vring base {@code base}. */
    public PackedQueue deviceQueue(int index, long features, int base, CallNotifier notifier) {
        return new PackedQueue(index, size, descGpa, driverGpa, deviceGpa, features, memory, base, notifier);
    }

    /** The driver's own avail and used positions in the vring base encoding (what SET_VRING_BASE sends). */
    public int vringBase() {
        return (availPos | (availWrap ? 0x8000 : 0)) | (usedPos | (usedWrap ? 0x8000 : 0)) << 16;
    }

    // ---------------------------------------------------------------- buffers

    /**
     * Makes a buffer available: one readable descriptor per {@code readable} array (bytes copied in),
     * then one writable descriptor per entry of {@code writableLengths}.
     *
     * @return the buffer id
     */
    public int addChain(byte[][] readable, int[] writableLengths) {
        int count = readable.length + writableLengths.length;
        DriverBuffers.checkCount(count, size);
        int id = takeId();
        long[] writable = new long[2 * writableLengths.length];
        int headFlags = 0;
        int pos = availPos;
        boolean wrap = availWrap;
        for (int k = 0; k < count; k++) {
            long addr = data.buffer(k, readable, writableLengths, writable);
            int len = DriverBuffers.length(k, readable, writableLengths);
            int flags = (k + 1 < count ? PackedDescriptorLayout.F_NEXT : 0)
                    | (k < readable.length ? 0 : PackedDescriptorLayout.F_WRITE) | availBits(wrap);
            writeEntry(pos, addr, len, id);
            if (k == 0) {
                headFlags = flags;
            } else {
                desc.putShort(pos * PackedDescriptorLayout.SIZE + PackedDescriptorLayout.FLAGS, (short) flags);
            }
            if (++pos == size) {
                pos = 0;
                wrap = !wrap;
            }
        }
        return publish(id, count, writable, headFlags, pos, wrap);
    }

    /** Makes a buffer available as one INDIRECT descriptor whose table holds the readable then writable parts. */
    public int addIndirectChain(byte[][] readable, int[] writableLengths) {
        int count = readable.length + writableLengths.length;
        long table = data.allocate(count * PackedDescriptorLayout.SIZE);
        long[] writable = new long[2 * writableLengths.length];
        for (int k = 0; k < count; k++) {
            long addr = data.buffer(k, readable, writableLengths, writable);
            int len = DriverBuffers.length(k, readable, writableLengths);
            writeDescriptorAt(table + (long) k * PackedDescriptorLayout.SIZE, addr, len, 0,
                    k < readable.length ? 0 : PackedDescriptorLayout.F_WRITE);
        }
        int id = takeId();
        writeEntry(availPos, table, count * PackedDescriptorLayout.SIZE, id);
        int pos = availPos + 1;
        boolean wrap = availWrap;
        if (pos == size) {
            pos = 0;
            wrap = !wrap;
        }
        return publish(id, 1, writable, PackedDescriptorLayout.F_INDIRECT | availBits(availWrap), pos, wrap);
    }

    private int takeId() {
        Integer id = freeIds.poll();
        if (id == null) {
            throw new IllegalStateException("all " + size + " buffer ids are outstanding");
        }
        return id;
    }

    private int publish(int id, int entries, long[] writable, int headFlags, int nextPos, boolean nextWrap) {
        entriesById[id] = entries;
        data.record(id, writable);
        // release: the whole buffer is written before the first descriptor's flags make it available
        U16.setRelease(desc, availPos * PackedDescriptorLayout.SIZE + PackedDescriptorLayout.FLAGS, (short) headFlags);
        availPos = nextPos;
        availWrap = nextWrap;
        return id;
    }

    /** AVAIL = wrap, USED = !wrap: available for a device at wrap counter {@code wrap}. */
    public static int availBits(boolean wrap) {
        return wrap ? PackedDescriptorLayout.F_AVAIL : PackedDescriptorLayout.F_USED;
    }

    /** Allocates {@code len} bytes (16-byte aligned) from the data area, wrapping to its start at the end. */
    public long allocate(int len) {
        return data.allocate(len);
    }

    /**
     * The next used descriptor the device wrote, or null if there is none: its buffer id and written
     * length. The driver's used position then skips the ring entries that buffer took.
     */
    public MockSplitQueue.UsedElement pollUsed() {
        int at = usedPos * PackedDescriptorLayout.SIZE;
        int flags = Short.toUnsignedInt((short) U16.getAcquire(desc, at + PackedDescriptorLayout.FLAGS));
        boolean avail = (flags & PackedDescriptorLayout.F_AVAIL) != 0;
        boolean used = (flags & PackedDescriptorLayout.F_USED) != 0;
        if (avail != usedWrap || used != usedWrap) {
            return null;
        }
        int id = Short.toUnsignedInt(desc.getShort(at + PackedDescriptorLayout.ID));
        int len = desc.getInt(at + PackedDescriptorLayout.LEN);
        if (id >= size || entriesById[id] == 0) {
            throw new IllegalStateException("device returned id " + id + ", which is not outstanding");
        }
        usedPos += entriesById[id];
        if (usedPos >= size) {
            usedPos -= size;
            usedWrap = !usedWrap;
        }
        entriesById[id] = 0;
        freeIds.add(id);
        return new MockSplitQueue.UsedElement(id, len);
    }

    /** The driver's next used position with its wrap counter in bit 15 (what off_wrap names). */
    public int usedOffWrap() {
        return usedPos | (usedWrap ? EventSuppressLayout.WRAP : 0);
    }

    /** The first {@code len} bytes the device wrote into buffer {@code id}. */
    public byte[] writtenBytes(int id, int len) {
        return data.written(id, len);
    }

    /** The bytes the device reports having written for a used element. */
    public byte[] writtenBytes(MockSplitQueue.UsedElement e) {
        return writtenBytes(e.id(), e.len());
    }

    // ---------------------------------------------------------------- raw ring access

    private void writeEntry(int pos, long addr, int len, int id) {
        int at = pos * PackedDescriptorLayout.SIZE;
        desc.putLong(at + PackedDescriptorLayout.ADDR, addr);
        desc.putInt(at + PackedDescriptorLayout.LEN, len);
        desc.putShort(at + PackedDescriptorLayout.ID, (short) id);
    }

    /** Writes ring entry {@code pos} verbatim, flags last with a release store (hostile values welcome). */
    public void writeDescriptor(int pos, long addr, int len, int id, int flags) {
        writeEntry(pos, addr, len, id);
        U16.setRelease(desc, pos * PackedDescriptorLayout.SIZE + PackedDescriptorLayout.FLAGS, (short) flags);
    }

    /** Writes a descriptor at any guest address (an entry of an indirect table). */
    public void writeDescriptorAt(long gpa, long addr, int len, int id, int flags) {
        ByteBuffer b = GuestAccess.slice(memory, gpa, PackedDescriptorLayout.SIZE);
        b.putLong(PackedDescriptorLayout.ADDR, addr);
        b.putInt(PackedDescriptorLayout.LEN, len);
        b.putShort(PackedDescriptorLayout.ID, (short) id);
        b.putShort(PackedDescriptorLayout.FLAGS, (short) flags);
    }

    /** The driver's avail position with its wrap counter in bit 15. */
    public int availOffWrap() {
        return availPos | (availWrap ? EventSuppressLayout.WRAP : 0);
    }

    /** Sets the driver event suppression (the driver's wishes about used-buffer notifications). */
    public void setDriverEvent(int offWrap, int flags) {
        driverEvent.putInt(0, EventSuppressLayout.word(offWrap, flags));
    }

    /** The device event suppression flags the device wrote (ENABLE, DISABLE or DESC). */
    public int deviceEventFlags() {
        return Short.toUnsignedInt(deviceEvent.getShort(EventSuppressLayout.FLAGS));
    }

    /** The device event suppression off_wrap the device wrote. */
    public int deviceEventOffWrap() {
        return Short.toUnsignedInt(deviceEvent.getShort(EventSuppressLayout.OFF_WRAP));
    }
}
