package org.jvhost.bench;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.jvhost.engine.virtq.CallNotifier;
import org.jvhost.engine.virtq.EventSuppressLayout;
import org.jvhost.engine.virtq.PackedDescriptorLayout;
import org.jvhost.engine.virtq.PackedQueue;
import org.jvhost.spi.GuestMemory;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.testkit.GuestAccess;
import org.jvhost.testkit.MockPackedQueue;

/**
 * {@link RingDriver}'s packed-ring twin: the ring laid out by {@link MockPackedQueue}, whose
 * {@code addChain}/{@code pollUsed} are not used here because they allocate per buffer. Buffer id
 * {@code i} owns buffer {@code i}. Posting writes one descriptor per buffer as DPDK 22.11's virtio_user
 * does (virtqueue_enqueue_xmit_packed_fast, virtqueue_refill_single_packed): addr, len and id, then that
 * descriptor's flags with release, before the next one. So each buffer becomes available as it is
 * written, and a device that has caught up takes it while the driver writes the next ones in the same
 * line, where a split driver publishes a burst with one store of avail->idx. (The model used to write
 * a batch's later descriptors first and the first one's flags last: one release per batch.)
 * A device-writable (receive) descriptor's id is read and stored only if it differs: virtio_user's
 * refill reads the id the device left at its position and does not write it. Reclaiming reads used
 * descriptors at the driver's used position and asks for a notification when the device writes the
 * next one (EVENT_IDX: driver event suppression DESC with off_wrap at that position; else ENABLE), so
 * the device signals once per batch it returns, as with {@link RingDriver}.
 *
 * <p>The ids live in one ring, {@link #ids}, in the order they were posted: from {@link #postedHead}
 * the {@link #postedCount} posted ones, after them the free ones, which the driver posts oldest first
 * (as DPDK's in-order virtio driver does). An in-order used descriptor frees every id up to its own, a
 * move of {@code postedHead}; an out-of-order one is swapped to {@code postedHead} first. So neither
 * side of the driver walks ids per buffer, and its cost per frame stays below the split driver's.
 */
final class PackedRingDriver implements BenchRing {
    private static final VarHandle U16 = MethodHandles.byteBufferViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle U32 = MethodHandles.byteBufferViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle U64 = MethodHandles.byteBufferViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    private static final int USED_BITS = PackedDescriptorLayout.F_AVAIL | PackedDescriptorLayout.F_USED;

    private final MockPackedQueue layout;
    private final int size;
    private final ByteBuffer desc;
    private final ByteBuffer driverEvent;
    private final long dataGpa;
    private final int bufferBytes;
    private final int bufferStride;
    private final int writeFlag;
    /** Ids, posted ones first from postedHead; {@link #slotOf} is the inverse. */
    private final int[] ids;
    private final int[] slotOf;
    private int postedHead;
    private int postedCount;
    private int availPos;
    /** Flags of an available descriptor for the current avail wrap (WRITE if device-writable). */
    private short availFlags;
    private boolean availWrap = true;
    private int usedPos;
    private boolean usedWrap = true;
    private boolean eventIdx;
    private boolean polling;
    /** VIRTIO_F_IN_ORDER: a used descriptor stands for every buffer posted up to its id. */
    private boolean inOrder;
    /** Guest address each id's buffer lies at now ({@link #post(int, long[], int)} moves them). */
    private final long[] gpaOf;

    /** As {@link RingDriver#RingDriver}: {@code size} buffers of {@code bufferBytes} in the area's data part. */
    PackedRingDriver(GuestMemory memory, int size, long areaGpa, long areaSize, int bufferBytes, boolean deviceWritable) {
        this.layout = MockPackedQueue.create(memory, size, areaGpa, areaSize);
        this.size = size;
        this.desc = GuestAccess.slice(memory, layout.descGpa(), (int) PackedDescriptorLayout.ringBytes(size));
        this.driverEvent = GuestAccess.slice(memory, layout.driverGpa(), EventSuppressLayout.SIZE);
        this.dataGpa = areaGpa + MockPackedQueue.ringArea(size);
        this.bufferBytes = bufferBytes;
        this.bufferStride = (bufferBytes + 63) & -64;
        if ((long) bufferStride * size > areaSize - MockPackedQueue.ringArea(size)) {
            throw new IllegalArgumentException(size + " buffers of " + bufferBytes + " bytes do not fit the data area");
        }
        this.writeFlag = deviceWritable ? PackedDescriptorLayout.F_WRITE : 0;
        this.ids = new int[size];
        this.slotOf = new int[size];
        for (int i = 0; i < size; i++) {
            ids[i] = i;
            slotOf[i] = i;
        }
        this.availFlags = flags(true);
        this.gpaOf = new long[size];
        for (int i = 0; i < size; i++) {
            gpaOf[i] = bufferGpa(i);
        }
    }

    /** Flags of an available descriptor: AVAIL/USED for {@code wrap}, WRITE if device-writable. */
    private short flags(boolean wrap) {
        return (short) (MockPackedQueue.availBits(wrap) | writeFlag);
    }

    @Override
    public long bufferGpa(int i) {
        return dataGpa + (long) i * bufferStride;
    }

    /** The descriptor ring: a packed ring's used descriptors are written in place there. */
    @Override
    public long usedGpa() {
        return layout.descGpa();
    }

    @Override
    public PackedQueue deviceQueue(int index, long features, CallNotifier notifier) {
        eventIdx = (features & VirtioFeatures.RING_EVENT_IDX) != 0;
        inOrder = (features & VirtioFeatures.IN_ORDER) != 0;
        return layout.deviceQueue(index, features, layout.vringBase(), notifier);
    }

    @Override
    public void post(int n) {
        post(n, null, bufferBytes);
    }

    /** As {@link #post(int)}, the buffers at {@code gpas[0..n)} of {@code len} bytes (null: each id's own). */
    @Override
    public void post(int n, long[] gpas, int len) {
        if (n > size - postedCount) {
            throw new IllegalStateException("driver has " + (size - postedCount) + " free ids, asked to post "
                    + n);
        }
        if (n == 0) {
            return;
        }
        int slot = postedHead + postedCount;
        for (int k = 0; k < n; k++, slot++) {
            int id = ids[slot < size ? slot : slot - size];
            int at = availPos * PackedDescriptorLayout.SIZE;
            if (gpas != null) {
                gpaOf[id] = gpas[k];
            }
            U64.set(desc, at + PackedDescriptorLayout.ADDR, gpaOf[id]);
            U32.set(desc, at + PackedDescriptorLayout.LEN, len);
            if (writeFlag == 0 || (short) U16.get(desc, at + PackedDescriptorLayout.ID) != (short) id) {
                U16.set(desc, at + PackedDescriptorLayout.ID, (short) id);
            }
            // Release: addr, len and id before the flags that make this descriptor available; the device
            // may take it at once (virtqueue_store_flags_packed: rte_io_wmb, then the flags).
            U16.setRelease(desc, at + PackedDescriptorLayout.FLAGS, availFlags);
            if (++availPos == size) {
                availPos = 0;
                availWrap = !availWrap;
                availFlags = flags(availWrap);
            }
        }
        postedCount += n;
    }

    @Override
    public int reclaim(int expectedLen) {
        return reclaim(expectedLen, null);
    }

    @Override
    public int reclaim(int expectedLen, long[] gpas) {
        int n = 0;
        while (postedCount > 0) {
            int at = usedPos * PackedDescriptorLayout.SIZE;
            // Acquire: the device writes len and id, then (release) the flags; reading the flags first
            // orders the read of len and id after it.
            int flags = Short.toUnsignedInt((short) U16.getAcquire(desc, at + PackedDescriptorLayout.FLAGS));
            if ((flags & USED_BITS) != (usedWrap ? USED_BITS : 0)) {
                break; // not used yet: AVAIL and USED both equal to the used wrap counter mark it used
            }
            long w = (long) U64.get(desc, at + PackedDescriptorLayout.LEN);
            int len = (int) w;
            int id = (int) (w >>> 32) & 0xffff;
            int from = id < size ? slotOf[id] - postedHead : -1;
            int taken = from < 0 ? from + size + 1 : from + 1; // ids up to this one, oldest first
            if (len != expectedLen || id >= size || taken > postedCount) {
                throw new IllegalStateException("used descriptor at " + usedPos + ": id " + id + " len " + len
                        + ", expected len " + expectedLen + " (or the id is not posted)");
            }
            if (!inOrder && taken > 1) {
                swap(postedHead, slotOf[id]);
                taken = 1;
            }
            if (gpas != null) {
                for (int k = 0; k < taken; k++) {
                    int slot = postedHead + k;
                    gpas[n + k] = gpaOf[ids[slot < size ? slot : slot - size]];
                }
            }
            postedHead += taken;
            if (postedHead >= size) {
                postedHead -= size;
            }
            postedCount -= taken;
            n += taken;
            usedPos += taken;
            if (usedPos >= size) {
                usedPos -= size;
                usedWrap = !usedWrap;
            }
        }
        if (!polling) {
            int offWrap = usedPos | (usedWrap ? EventSuppressLayout.WRAP : 0);
            U32.setRelease(driverEvent, 0, EventSuppressLayout.word(offWrap,
                    eventIdx ? EventSuppressLayout.DESC : EventSuppressLayout.ENABLE));
        }
        return n;
    }

    /** Exchanges the ids at two slots of {@link #ids}. */
    private void swap(int a, int b) {
        int x = ids[a];
        int y = ids[b];
        ids[a] = y;
        ids[b] = x;
        slotOf[y] = a;
        slotOf[x] = b;
    }

    @Override
    public int freeCount() {
        return size - postedCount;
    }

    /** Driver event suppression DISABLE, written once: the device never signals. */
    @Override
    public void pollMode() {
        polling = true;
        U32.setRelease(driverEvent, 0, EventSuppressLayout.word(0, EventSuppressLayout.DISABLE));
    }
}
