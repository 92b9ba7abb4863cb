package org.jvhost.spi;

/**
 * The guest's physical memory as the front-end shared it: a set of non-overlapping regions addressed by
 * guest-physical address (GPA). An instance is an immutable snapshot; when the front-end changes the
 * memory table the host hands running queues a new snapshot.
 */
public interface GuestMemory {

    /** The region containing {@code gpa}, or null if no region does. Allocation-free. */
    MemoryRegion regionFor(long gpa);

    /** Number of regions. */
    int regionCount();

    /** Region {@code i}, ordered by guest address. */
    MemoryRegion region(int i);

    /**
     * True if {@code [gpa, gpa + len)} lies inside one region. The check is overflow-safe, so a hostile
     * {@code gpa + len} that wraps past 2^64 is reported as outside.
     */
    default boolean contains(long gpa, long len) {
        MemoryRegion r = regionFor(gpa);
        return r != null && len >= 0 && Long.compareUnsigned(len, r.size() - (gpa - r.guestAddress())) <= 0;
    }
}
