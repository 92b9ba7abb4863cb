package org.jvhost.engine.memory;

/**
 * One memory region as the front-end describes it (VhostUserMemoryRegion on the wire).
 *
 * @param guestAddress guest-physical address of the region's first byte
 * @param size         bytes
 * @param userAddress  the front-end's virtual address of the first byte (ring addresses use these)
 * @param mmapOffset   where the region starts in the file behind the fd
 */
public record RegionSpec(long guestAddress, long size, long userAddress, long mmapOffset) {
    @Override
    public String toString() {
        return String.format("region gpa=0x%x size=0x%x uaddr=0x%x offset=0x%x",
                guestAddress, size, userAddress, mmapOffset);
    }
}
