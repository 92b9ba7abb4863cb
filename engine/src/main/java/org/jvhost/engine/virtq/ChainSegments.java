package org.jvhost.engine.virtq;

import java.nio.ByteBuffer;
import org.jvhost.spi.GuestMemory;
import org.jvhost.spi.MemoryRegion;

/**
 * The checks both ring layouts make of an indirect descriptor ({@link #indirectProblem}), and appends a
 * descriptor's buffer to a flattened chain after the checks both make of it (virtio
 * 1.2, 2.7.4.2 and 2.8.21.1: device-writable buffers after all device-readable ones; and jvhost's: one
 * region, at most 512 MiB, at most 2^31-1 bytes each way per chain). Shared by {@link SplitQueue} and
 * {@link PackedChainReader}; worker only, like its queue; never allocates unless a check fails.
 *
 * <p>It remembers the region the last buffer fell in, and the window of it: a driver's buffers mostly
 * lie in one region, so most buffers skip {@link GuestMemory#regionFor}'s search and the region's calls.
 * The memory snapshot is compared by identity on every {@link #use}, so a memory update never leaves a
 * region of the old snapshot in use.
 */
final class ChainSegments {
    private GuestMemory memory;
    /** The remembered region: where it starts, its size and native address (0 if not mapped). */
    private MemoryRegion last;
    private long lastStart;
    private long lastSize;
    private long lastNative;
    /** Its window last used: the region offset it starts at, and where that offset lies in it. */
    private long windowStart;
    private ByteBuffer window;
    private int windowBias;

    /** The memory the next buffers lie in; forgets the remembered region if it is another snapshot. */
    void use(GuestMemory m) {
        if (m != memory) {
            memory = m;
            last = null;
            lastSize = 0;
            window = null;
        }
    }

    /**
     * Checks one non-empty buffer and appends it to {@code c}.
     *
     * @return null if appended, else what is wrong with it (the caller names the descriptor and breaks
     *         its queue)
     */
    String add(SplitDescriptorChain c, long addr, int len, boolean writable) {
        long ulen = Integer.toUnsignedLong(len);
        if (!writable && c.writableBytes() > 0) {
            return "device-readable descriptor after a device-writable one";
        }
        if (ulen > MemoryRegion.WINDOW_STRIDE) {
            return String.format("length 0x%x exceeds the 512 MiB a descriptor may span", ulen);
        }
        long offset = addr - lastStart;
        if (Long.compareUnsigned(offset, lastSize) >= 0) {
            offset = remember(addr) ? addr - lastStart : -1;
        }
        if (offset < 0 || ulen > lastSize - offset) {
            return String.format("buffer [0x%x, +0x%x) is not inside one guest memory region", addr, ulen);
        }
        long total = (writable ? c.writableBytes() : c.readableBytes()) + ulen;
        if (total > Integer.MAX_VALUE) {
            return String.format("chain has more than 2^31-1 %s bytes", writable ? "writable" : "readable");
        }
        if (Long.compareUnsigned(offset - windowStart, MemoryRegion.WINDOW_STRIDE) >= 0) {
            openWindow(offset);
        }
        c.add(window, windowBias + (int) (offset - windowStart), len, lastNative != 0 ? lastNative + offset : 0,
                addr, writable);
        return null;
    }

    /**
     * What is wrong with a descriptor flagged INDIRECT, or null if its table may be read: the rules are
     * the same for both layouts (virtio 1.2, 2.7.5.3.1 and 2.8.20), and so is the descriptor size.
     *
     * @param negotiated VIRTIO_F_RING_INDIRECT_DESC was negotiated
     * @param inTable    the descriptor lies in an indirect table itself
     * @param withNext   it also has NEXT set
     */
    String indirectProblem(boolean negotiated, boolean inTable, boolean withNext, long addr, int len) {
        if (!negotiated) {
            return "INDIRECT flag but VIRTIO_F_RING_INDIRECT_DESC was not negotiated";
        }
        if (inTable) {
            // "The driver MUST NOT set the VIRTQ_DESC_F_INDIRECT flag within an indirect descriptor"
            return "nested indirect table";
        }
        if (withNext) {
            // "A driver MUST NOT set both VIRTQ_DESC_F_INDIRECT and VIRTQ_DESC_F_NEXT in flags"
            return "INDIRECT together with NEXT";
        }
        long tableLen = Integer.toUnsignedLong(len);
        if (tableLen == 0 || tableLen % DescriptorLayout.SIZE != 0 || tableLen > MemoryRegion.WINDOW_STRIDE) {
            return String.format("indirect table length 0x%x is not a positive multiple of %d up to 512 MiB",
                    tableLen, DescriptorLayout.SIZE);
        }
        if (!memory.contains(addr, tableLen)) {
            return String.format("indirect table [0x%x, +0x%x) is not inside one guest memory region", addr, tableLen);
        }
        return null;
    }

    /** Remembers the region holding {@code gpa}; false if there is none. */
    private boolean remember(long gpa) {
        MemoryRegion r = memory.regionFor(gpa);
        if (r == null) {
            return false;
        }
        last = r;
        lastStart = r.guestAddress();
        lastSize = r.size();
        lastNative = r.nativeAddress();
        windowStart = -MemoryRegion.WINDOW_STRIDE; // no window of it open yet
        return true;
    }

    /**
     * Opens the window of the remembered region that starts at or before {@code offset}: windows start
     * every {@link MemoryRegion#WINDOW_STRIDE} bytes, and a buffer of at most that length starting in one
     * lies inside it (the {@link MemoryRegion} contract).
     */
    private void openWindow(long offset) {
        windowStart = offset & -MemoryRegion.WINDOW_STRIDE;
        window = last.window(windowStart);
        windowBias = last.windowOffset(windowStart);
    }
}
