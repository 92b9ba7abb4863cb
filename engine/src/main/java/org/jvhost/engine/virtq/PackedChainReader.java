package org.jvhost.engine.virtq;

import static org.jvhost.engine.virtq.PackedDescriptorLayout.F_INDIRECT;
import static org.jvhost.engine.virtq.PackedDescriptorLayout.F_NEXT;
import static org.jvhost.engine.virtq.PackedDescriptorLayout.F_WRITE;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.jvhost.spi.GuestMemory;
import org.jvhost.spi.MemoryRegion;

/**
 * Reads one buffer of a packed ring into a flattened chain, checking every rule of virtio 1.2 sections
 * 2.8.6 (chaining), 2.8.7 (indirect) and 2.8.19-2.8.21, and breaks the queue on the first one broken:
 * <ul>
 *   <li>a chain longer than the ring (it ran past its own start), indirect entries counted as in a
 *       split ring;</li>
 *   <li>a chained entry whose AVAIL/USED bits do not mark it available for the wrap counter of its
 *       position (the driver writes a buffer's later entries before its first: a later entry that is
 *       not available lies about the wrap counter);</li>
 *   <li>INDIRECT without VIRTIO_F_RING_INDIRECT_DESC, with NEXT, inside an indirect table, or with a
 *       table length that is not a positive multiple of 16 inside one region;</li>
 *   <li>a device-readable buffer after a device-writable one, or any buffer outside one region.</li>
 * </ul>
 * Worker only, like its queue; never allocates.
 */
final class PackedChainReader extends ChainReader {
    private static final VarHandle U16 = MethodHandles.byteBufferViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle U32 = MethodHandles.byteBufferViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle U64 = MethodHandles.byteBufferViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    /** Descriptors (ring and indirect) the chain may still take: the ring size at its start. */
    private int budget;

    PackedChainReader(Breakable queue, int size, boolean indirectAllowed) {
        super(queue, "ring entry", size, indirectAllowed);
    }

    /**
     * Reads the buffer starting at ring position {@code pos} (whose first entry the caller found
     * available for {@code wrap}, loading its flags {@code firstFlags} with acquire) into {@code c},
     * with its buffer id as the chain's head.
     *
     * @return the ring entries the buffer takes, or 0 if it is malformed (the queue is then broken)
     */
    int read(SplitDescriptorChain c, ByteBuffer ring, int pos, boolean wrap, int firstFlags, GuestMemory mem) {
        use(mem);
        c.reset(0);
        if ((firstFlags & (F_NEXT | F_INDIRECT)) == 0) {
            return single(c, ring, pos, firstFlags);
        }
        budget = size;
        int start = pos;
        for (int entries = 1; ; entries++) {
            if (entries > size) {
                fail(String.format("chain at ring position %d is longer than the ring size %d", start, size));
                return 0;
            }
            int at = pos * PackedDescriptorLayout.SIZE;
            int flags = entries == 1 ? firstFlags
                    : Short.toUnsignedInt((short) U16.get(ring, at + PackedDescriptorLayout.FLAGS));
            if (entries > 1 && !PackedDescriptorLayout.isAvailable(flags, wrap)) {
                fail(String.format("ring entry %d continues the chain at %d, but its flags 0x%x do not mark "
                        + "it available for wrap counter %d", pos, start, flags, wrap ? 1 : 0));
                return 0;
            }
            long addr = (long) U64.get(ring, at + PackedDescriptorLayout.ADDR);
            int len = (int) U32.get(ring, at + PackedDescriptorLayout.LEN);
            if (!descriptor(c, pos, -1, addr, len, flags)) {
                return 0;
            }
            if ((flags & F_NEXT) == 0) {
                // 2.8.6: "the buffer id is included in the last descriptor in the list"
                c.setHead(Short.toUnsignedInt((short) U16.get(ring, at + PackedDescriptorLayout.ID)));
                return entries;
            }
            if (++pos == size) {
                pos = 0;
                wrap = !wrap;
            }
        }
    }

    /**
     * A buffer of one ring descriptor, neither chained nor indirect (what Linux and DPDK post for a
     * frame): addr, then len and id in one load, and the buffer's checks. The chain rules have
     * nothing to check in it.
     */
    private int single(SplitDescriptorChain c, ByteBuffer ring, int pos, int flags) {
        int at = pos * PackedDescriptorLayout.SIZE;
        long addr = (long) U64.get(ring, at + PackedDescriptorLayout.ADDR);
        long lenId = (long) U64.get(ring, at + PackedDescriptorLayout.LEN); // len, id (flags: taken as given)
        int len = (int) lenId;
        if (len != 0 && !addSegment(c, pos, -1, addr, len, (flags & F_WRITE) != 0)) {
            return 0;
        }
        c.setHead((int) (lenId >>> 32) & 0xffff);
        return 1;
    }

    /** One ring descriptor: a buffer, or an indirect table that is read whole. */
    private boolean descriptor(SplitDescriptorChain c, int i, long tableGpa, long addr, int len, int flags) {
        if (budget-- == 0) {
            return fail(where(i, tableGpa) + ": the chain holds more descriptors than the ring size " + size);
        }
        if ((flags & F_INDIRECT) == 0) {
            return len == 0 || addSegment(c, i, tableGpa, addr, len, (flags & F_WRITE) != 0);
        }
        if (!checkIndirect(i, tableGpa, addr, len, (flags & F_NEXT) != 0)) {
            return false;
        }
        budget++; // the table's pointer is not a buffer: a table may hold the ring size (as for split rings)
        MemoryRegion r = memory.regionFor(addr);
        long offset = addr - r.guestAddress();
        ByteBuffer table = r.window(offset);
        int base = r.windowOffset(offset);
        int entries = len / PackedDescriptorLayout.SIZE;
        // 2.8.19: the table's descriptors follow one another; NEXT and the buffer id mean nothing there
        for (int k = 0; k < entries; k++) {
            int at = base + k * PackedDescriptorLayout.SIZE;
            int f = Short.toUnsignedInt((short) U16.get(table, at + PackedDescriptorLayout.FLAGS));
            if (!descriptor(c, k, addr, (long) U64.get(table, at + PackedDescriptorLayout.ADDR),
                    (int) U32.get(table, at + PackedDescriptorLayout.LEN), f)) {
                return false;
            }
        }
        return true;
    }
}
