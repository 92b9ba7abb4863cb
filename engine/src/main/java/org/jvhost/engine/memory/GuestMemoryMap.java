package org.jvhost.engine.memory;

import java.util.List;
import org.jvhost.spi.GuestMemory;
import org.jvhost.spi.MemoryRegion;

/**
 * An immutable snapshot of guest memory: regions sorted by guest address, plus front-end virtual
 * address translation for ring addresses (STUB: signatures agreed; bodies to be written).
 */
public final class GuestMemoryMap implements GuestMemory {

    /** No memory at all (before SET_MEM_TABLE). */
    public static final GuestMemoryMap EMPTY = null;

    private GuestMemoryMap() {
    }

    /**
     * A snapshot of these regions. Rejects overlapping guest ranges or overlapping user-address ranges.
     *
     * @throws MemoryMapException naming the two overlapping regions
     */
    public static GuestMemoryMap of(List<? extends MemoryRegion> regions) throws MemoryMapException {
        throw new UnsupportedOperationException("stub");
    }

    /** The regions (each a {@link MappedRegion} in production, any {@link MemoryRegion} in tests). */
    public List<MemoryRegion> regions() {
        throw new UnsupportedOperationException("stub");
    }

    /**
     * Translates a front-end virtual address (SET_VRING_ADDR's desc/avail/used) to a guest-physical
     * address, requiring {@code [userAddress, userAddress + len)} inside one region.
     *
     * @return the GPA, or -1 if no single region holds the range
     */
    public long userToGuest(long userAddress, long len) {
        throw new UnsupportedOperationException("stub");
    }

    @Override
    public MemoryRegion regionFor(long gpa) {
        throw new UnsupportedOperationException("stub");
    }

    @Override
    public int regionCount() {
        throw new UnsupportedOperationException("stub");
    }

    @Override
    public MemoryRegion region(int i) {
        throw new UnsupportedOperationException("stub");
    }
}
