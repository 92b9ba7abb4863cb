package org.jvhost.bench;

import java.nio.ByteBuffer;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import org.jvhost.engine.virtq.CallNotifier;
import org.jvhost.engine.virtq.DescriptorLayout;
import org.jvhost.engine.virtq.SplitQueue;
import org.jvhost.engine.virtq.UsedRingLayout;
import org.jvhost.spi.GuestMemory;
import org.jvhost.testkit.GuestAccess;
import org.jvhost.testkit.MockSplitQueue;

/**
 * An allocation-free guest driver for benchmarks, built on {@link MockSplitQueue}'s ring layout and raw
 * ring writes. Every descriptor owns one fixed buffer, so a chain is one descriptor and "posting" a
 * buffer is one avail-ring entry; heads come from a free stack the driver refills from the used ring,
 * as a virtio driver's free list does. {@link MockSplitQueue#addChain} and {@link MockSplitQueue#pollUsed}
 * are not used here because they allocate per chain (arrays, a map entry, a record), which would be
 * measured as if it were the device's cost.
 *
 * <p>The driver asks for a used-buffer notification once per reclaimed batch: with EVENT_IDX it sets
 * used_event to the last used index it saw (as Linux's virtqueue_enable_cb does), otherwise it leaves
 * avail->flags at 0. So the device signals exactly once per batch it returns.
 */
final class RingDriver implements BenchRing {
    private static final VarHandle U16 = MethodHandles.byteBufferViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);

    private final MockSplitQueue ring;
    private final int size;
    private final ByteBuffer used;
    private final int[] free;
    private final int bufferStride;
    private int freeCount;
    private int lastUsed;
    private boolean polling;
    /** VIRTIO_F_IN_ORDER: a used element may stand for every buffer posted up to its id ({@link #posted}). */
    private boolean inOrder;
    /** Heads in the order they were posted, oldest at postedHead (read only in order). */
    private final int[] posted;
    private int postedHead;
    private int postedTail;
    /** Descriptor flags of every buffer (WRITE if device-writable). */
    private final int flags;
    /** Guest address each head's descriptor points at now ({@link #post(int, long[], int)} moves them). */
    private final long[] gpaOf;

    /**
     * A ring of {@code size} descriptors in {@code [areaGpa, areaGpa + areaSize)}, descriptor {@code i}
     * pointing at its own buffer of {@code bufferBytes} (readable, or writable if {@code deviceWritable}).
     */
    RingDriver(GuestMemory memory, int size, long areaGpa, long areaSize, int bufferBytes, boolean deviceWritable) {
        this.ring = MockSplitQueue.create(memory, size, areaGpa, areaSize);
        this.size = size;
        this.used = GuestAccess.slice(memory, ring.usedGpa(), (int) UsedRingLayout.bytes(size));
        this.bufferStride = (bufferBytes + 63) & -64; // cache-line aligned buffers, as a driver's pool
        if ((long) bufferStride * size > ring.dataSize()) {
            throw new IllegalArgumentException(size + " buffers of " + bufferBytes + " bytes do not fit the data area");
        }
        this.free = new int[size];
        this.posted = new int[size];
        this.flags = deviceWritable ? DescriptorLayout.F_WRITE : 0;
        this.gpaOf = new long[size];
        for (int i = 0; i < size; i++) {
            ring.writeDescriptor(i, bufferGpa(i), bufferBytes, flags, 0);
            gpaOf[i] = bufferGpa(i);
            free[i] = size - 1 - i;
        }
        this.freeCount = size;
    }

    /** Guest address of descriptor {@code i}'s buffer. */
    @Override
    public long bufferGpa(int i) {
        return ring.dataGpa() + (long) i * bufferStride;
    }

    /** Guest address of the used ring (what QEMU passes as log_guest_addr). */
    @Override
    public long usedGpa() {
        return ring.usedGpa();
    }

    /** The engine's device-side queue over this ring. */
    @Override
    public SplitQueue deviceQueue(int index, long features, CallNotifier notifier) {
        inOrder = (features & org.jvhost.spi.VirtioFeatures.IN_ORDER) != 0;
        return ring.deviceQueue(index, features, 0, notifier);
    }

    /** Makes {@code n} buffers available: n avail entries, then one release store of avail->idx. */
    @Override
    public void post(int n) {
        if (n > freeCount) {
            throw new IllegalStateException("driver has " + freeCount + " free descriptors, asked to post " + n);
        }
        int idx = ring.availIdx();
        for (int k = 0; k < n; k++) {
            int head = free[--freeCount];
            ring.setAvailRingEntry((idx + k) & (size - 1), head);
            posted[postedTail++ & (size - 1)] = head;
        }
        ring.setAvailIdx(idx + n);
    }

    /**
     * Makes {@code n} buffers at the guest addresses {@code gpas[0..n)}, {@code len} bytes each,
     * available: each head's descriptor is rewritten first, as a driver posting mbufs from a pool does.
     */
    @Override
    public void post(int n, long[] gpas, int len) {
        if (n > freeCount) {
            throw new IllegalStateException("driver has " + freeCount + " free descriptors, asked to post " + n);
        }
        int idx = ring.availIdx();
        for (int k = 0; k < n; k++) {
            int head = free[--freeCount];
            ring.writeDescriptor(head, gpas[k], len, flags, 0);
            gpaOf[head] = gpas[k];
            ring.setAvailRingEntry((idx + k) & (size - 1), head);
            posted[postedTail++ & (size - 1)] = head;
        }
        ring.setAvailIdx(idx + n);
    }

    @Override
    public int reclaim(int expectedLen) {
        return reclaim(expectedLen, null);
    }

    /**
     * Takes back every used element the device published, checking each reports {@code expectedLen}
     * bytes written, and asks for a notification on the next one. If {@code gpas} is not null, the
     * reclaimed buffers' guest addresses go there, in the order they are freed.
     *
     * @return elements reclaimed
     */
    @Override
    public int reclaim(int expectedLen, long[] gpas) {
        int usedIdx = Short.toUnsignedInt((short) U16.getAcquire(used, UsedRingLayout.IDX));
        int n = (usedIdx - lastUsed) & 0xffff;
        for (int k = 0; k < n; ) {
            int at = UsedRingLayout.elem((lastUsed + k) & (size - 1));
            int id = used.getInt(at + UsedRingLayout.ELEM_ID);
            int len = used.getInt(at + UsedRingLayout.ELEM_LEN);
            if (len != expectedLen || id < 0 || id >= size) {
                throw new IllegalStateException("used element " + (lastUsed + k) + ": id " + id + " len " + len
                        + ", expected len " + expectedLen);
            }
            // in order, the element stands for every head posted up to id; otherwise for id alone
            int head;
            do {
                head = posted[postedHead++ & (size - 1)];
                int freed = inOrder ? head : id;
                free[freeCount++] = freed;
                if (gpas != null) {
                    gpas[k] = gpaOf[freed];
                }
                k++;
            } while (inOrder && head != id && k < n);
            if (inOrder && head != id) {
                throw new IllegalStateException("in-order used element names head " + id + ", not among those posted");
            }
        }
        lastUsed = usedIdx;
        if (!polling) {
            ring.setUsedEvent(lastUsed);
        }
        return n;
    }

    @Override
    public int freeCount() {
        return freeCount;
    }

    /** used_event stays where it is (a poll-mode driver never moves it; the device signals rarely). */
    @Override
    public void pollMode() {
        polling = true;
    }
}
