package org.jvhost.engine.virtq;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.jvhost.spi.GuestMemory;
import org.jvhost.spi.MemoryRegion;

/**
 * The checks and windows both layouts make of a queue's three ring areas (split: descriptor table,
 * avail ring, used ring; packed: descriptor ring, driver area, device area), when the queue starts and
 * after each memory update.
 */
final class RingAreas {

    private RingAreas() {
    }

    /** Refuses, naming the queue and the area, a guest address that is not {@code alignment}-aligned. */
    static void checkAligned(int index, String field, long gpa, int alignment) {
        if ((gpa & (alignment - 1)) != 0) {
            throw new IllegalArgumentException(String.format("queue %d: %s address 0x%x is not %d-byte aligned",
                    index, field, gpa, alignment));
        }
    }

    /** A buffer over {@code [gpa, gpa + len)} in little-endian order, or null if no one region holds it. */
    static ByteBuffer window(GuestMemory memory, long gpa, long len) {
        if (!memory.contains(gpa, len)) {
            return null;
        }
        MemoryRegion region = memory.regionFor(gpa);
        long offset = gpa - region.guestAddress();
        return region.window(offset).slice(region.windowOffset(offset), (int) len).order(ByteOrder.LITTLE_ENDIAN);
    }
}
