package org.jvhost.engine.protocol;

import java.nio.ByteBuffer;
import org.jvhost.engine.memory.RegionSpec;

/**
 * One memory region ({@code VhostUserMemoryRegion}), an element of the memory table and the body of
 * the single-region messages:
 * <pre>
 *  0                               8                               16
 *  +-------------------------------+-------------------------------+
 *  |      guest_phys_addr          |          memory_size          |
 *  +-------------------------------+-------------------------------+
 *  16                              24                              32
 *  +-------------------------------+-------------------------------+
 *  |        userspace_addr         |          mmap_offset          |
 *  +-------------------------------+-------------------------------+
 * </pre>
 */
public final class MemoryRegionLayout {
    public static final int GUEST_ADDR = 0;
    public static final int MEMORY_SIZE = 8;
    public static final int USER_ADDR = 16;
    public static final int MMAP_OFFSET = 24;
    public static final int SIZE = 32;

    private MemoryRegionLayout() {
    }

    /** Reads the region at byte {@code offset} of {@code p}. */
    public static RegionSpec read(ByteBuffer p, int offset) {
        return new RegionSpec(p.getLong(offset + GUEST_ADDR), p.getLong(offset + MEMORY_SIZE),
                p.getLong(offset + USER_ADDR), p.getLong(offset + MMAP_OFFSET));
    }

    /** Writes {@code r} at byte {@code offset} of {@code p}. */
    public static void write(ByteBuffer p, int offset, RegionSpec r) {
        p.putLong(offset + GUEST_ADDR, r.guestAddress()).putLong(offset + MEMORY_SIZE, r.size())
                .putLong(offset + USER_ADDR, r.userAddress()).putLong(offset + MMAP_OFFSET, r.mmapOffset());
    }
}
