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
import org.jvhost.testkit.GuestAccess;
import org.jvhost.testkit.MockPackedQueue;

/**
 * {@link RingDriver}'s packed-ring twin: the ring laid out by {@link MockPackedQueue}, whose
 * {@code addChain}/{@code pollUsed} are not used here because they allocate per buffer. Buffer id
 * {@code i} owns buffer {@code i}; posting writes one descriptor per buffer, the batch's first flags
 * last (release), as Linux's and DPDK's drivers publish a batch. Reclaiming reads used descriptors at
 * the driver's used position and asks for a notification when the device writes the next one
 * (EVENT_IDX: driver event suppression DESC with off_wrap at that position; else ENABLE), so the device
 * signals once per batch it returns, as with {@link RingDriver}.
 */
final class PackedRingDriver implements BenchRing {
    private static final VarHandle U16 = MethodHandles.byteBufferViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle U32 = MethodHandles.byteBufferViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);

    private final MockPackedQueue layout;
    private final int size;
    private final ByteBuffer desc;
    private final ByteBuffer driverEvent;
    private final long dataGpa;
    private final int bufferBytes;
    private final int bufferStride;
    private final int writeFlag;
    private final int[] free;
    private int freeCount;
    private int availPos;
    private boolean availWrap = true;
    private int usedPos;
    private boolean usedWrap = true;
    private boolean eventIdx;
    private boolean polling;
    /** VIRTIO_F_IN_ORDER: a used descriptor may stand for every buffer posted up to its id ({@link #posted}). */
    private boolean inOrder;
    /** Ids in the order they were posted, oldest at postedHead. */
    private final int[] posted;
    private int postedHead;
    private int postedTail;

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
        this.free = new int[size];
        this.posted = new int[size];
        for (int i = 0; i < size; i++) {
            free[i] = size - 1 - i;
        }
        this.freeCount = size;
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
        eventIdx = (features & org.jvhost.spi.VirtioFeatures.RING_EVENT_IDX) != 0;
        inOrder = (features & org.jvhost.spi.VirtioFeatures.IN_ORDER) != 0;
        return layout.deviceQueue(index, features, layout.vringBase(), notifier);
    }

    @Override
    public void post(int n) {
        if (n > freeCount) {
            throw new IllegalStateException("driver has " + freeCount + " free ids, asked to post " + n);
        }
        int first = availPos;
        int firstFlags = 0;
        for (int k = 0; k < n; k++) {
            int id = free[--freeCount];
            posted[postedTail] = id;
            if (++postedTail == size) {
                postedTail = 0;
            }
            int at = availPos * PackedDescriptorLayout.SIZE;
            desc.putLong(at + PackedDescriptorLayout.ADDR, bufferGpa(id));
            desc.putInt(at + PackedDescriptorLayout.LEN, bufferBytes);
            desc.putShort(at + PackedDescriptorLayout.ID, (short) id);
            int flags = MockPackedQueue.availBits(availWrap) | writeFlag;
            if (k == 0) {
                firstFlags = flags;
            } else {
                U16.setRelease(desc, at + PackedDescriptorLayout.FLAGS, (short) flags);
            }
            if (++availPos == size) {
                availPos = 0;
                availWrap = !availWrap;
            }
        }
        if (n > 0) {
            // Release: the whole batch before its first flags, which the device polls.
            U16.setRelease(desc, first * PackedDescriptorLayout.SIZE + PackedDescriptorLayout.FLAGS, (short) firstFlags);
        }
    }

    @Override
    public int reclaim(int expectedLen) {
        int n = 0;
        while (true) {
            int at = usedPos * PackedDescriptorLayout.SIZE;
            int flags = Short.toUnsignedInt((short) U16.getAcquire(desc, at + PackedDescriptorLayout.FLAGS));
            boolean avail = (flags & PackedDescriptorLayout.F_AVAIL) != 0;
            boolean used = (flags & PackedDescriptorLayout.F_USED) != 0;
            if (avail != usedWrap || used != usedWrap) {
                break;
            }
            int id = Short.toUnsignedInt(desc.getShort(at + PackedDescriptorLayout.ID));
            int len = desc.getInt(at + PackedDescriptorLayout.LEN);
            if (len != expectedLen || id >= size) {
                throw new IllegalStateException("used descriptor at " + usedPos + ": id " + id + " len " + len
                        + ", expected len " + expectedLen);
            }
            // in order, the descriptor stands for every buffer posted up to id (one ring entry each)
            int got;
            int taken = 0;
            do {
                got = posted[postedHead];
                if (++postedHead == size) {
                    postedHead = 0;
                }
                free[freeCount++] = inOrder ? got : id;
                n++;
                taken++;
                if (++usedPos == size) {
                    usedPos = 0;
                    usedWrap = !usedWrap;
                }
            } while (inOrder && got != id && taken < size);
            if (inOrder && got != id) {
                throw new IllegalStateException("in-order used descriptor names id " + id + ", not among those posted");
            }
        }
        if (!polling) {
            int offWrap = usedPos | (usedWrap ? EventSuppressLayout.WRAP : 0);
            U32.setRelease(driverEvent, 0, EventSuppressLayout.word(offWrap,
                    eventIdx ? EventSuppressLayout.DESC : EventSuppressLayout.ENABLE));
        }
        return n;
    }

    @Override
    public int freeCount() {
        return freeCount;
    }

    /** Driver event suppression DISABLE, written once: the device never signals. */
    @Override
    public void pollMode() {
        polling = true;
        U32.setRelease(driverEvent, 0, EventSuppressLayout.word(0, EventSuppressLayout.DISABLE));
    }
}
