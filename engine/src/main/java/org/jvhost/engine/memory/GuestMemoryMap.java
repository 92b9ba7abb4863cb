package org.jvhost.engine.memory;

import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.function.ToLongFunction;
import org.jvhost.spi.GuestMemory;
import org.jvhost.spi.MemoryRegion;

/**
 * An immutable snapshot of guest memory: regions sorted by guest address, plus front-end virtual
 * address translation for ring addresses. Lookups are allocation-free and keep no mutable state, so
 * one snapshot is shared by every queue worker without synchronisation.
 *
 * <p>A region that is not a {@link MappedRegion} (fake memory in tests) has no separate front-end
 * address; its user address is taken to equal its guest address.
 */
public final class GuestMemoryMap implements GuestMemory {

    /** No memory at all (before SET_MEM_TABLE). */
    public static final GuestMemoryMap EMPTY = new GuestMemoryMap(new MemoryRegion[0]);

    private final MemoryRegion[] regions;
    /** Guest start addresses, parallel to {@link #regions}, for a binary search without virtual calls. */
    private final long[] starts;
    private final long[] sizes;
    private final long[] userStarts;
    private final List<MemoryRegion> view;
    private final boolean mayFault;
    /** The regions that are {@link MappedRegion}s (all of them outside tests). */
    private final MappedRegion[] mapped;

    private GuestMemoryMap(MemoryRegion[] sorted) {
        this.regions = sorted;
        this.starts = new long[sorted.length];
        this.sizes = new long[sorted.length];
        this.userStarts = new long[sorted.length];
        for (int i = 0; i < sorted.length; i++) {
            starts[i] = sorted[i].guestAddress();
            sizes[i] = sorted[i].size();
            userStarts[i] = userAddress(sorted[i]);
        }
        this.view = List.of(sorted);
        this.mayFault = view.stream().anyMatch(r -> r instanceof MappedRegion && ((MappedRegion) r).canShrink());
        this.mapped = view.stream().filter(r -> r instanceof MappedRegion).toArray(MappedRegion[]::new);
    }

    /**
     * A snapshot of these regions. Rejects overlapping guest ranges or overlapping user-address ranges.
     *
     * @throws MemoryMapException naming the two overlapping regions
     */
    public static GuestMemoryMap of(List<? extends MemoryRegion> regions) throws MemoryMapException {
        MemoryRegion[] byGuest = regions.toArray(new MemoryRegion[0]);
        Arrays.sort(byGuest, Comparator.comparing(MemoryRegion::guestAddress, Long::compareUnsigned));
        checkDisjoint(byGuest, MemoryRegion::guestAddress, "guest");
        MemoryRegion[] byUser = byGuest.clone();
        Arrays.sort(byUser, Comparator.comparing(GuestMemoryMap::userAddress, Long::compareUnsigned));
        checkDisjoint(byUser, GuestMemoryMap::userAddress, "user");
        return new GuestMemoryMap(byGuest);
    }

    private static void checkDisjoint(MemoryRegion[] sorted, ToLongFunction<MemoryRegion> start,
                                      String space) throws MemoryMapException {
        for (int i = 1; i < sorted.length; i++) {
            MemoryRegion prev = sorted[i - 1];
            MemoryRegion next = sorted[i];
            // next starts at or after prev (unsigned); they overlap if next starts before prev ends.
            if (Long.compareUnsigned(start.applyAsLong(next) - start.applyAsLong(prev), prev.size()) < 0) {
                throw new MemoryMapException("overlapping " + space + " address ranges: " + describe(prev)
                        + " and " + describe(next));
            }
        }
    }

    private static long userAddress(MemoryRegion r) {
        return r instanceof MappedRegion ? ((MappedRegion) r).userAddress() : r.guestAddress();
    }

    private static String describe(MemoryRegion r) {
        return r instanceof MappedRegion ? r.toString()
                : String.format("region gpa=0x%x size=0x%x", r.guestAddress(), r.size());
    }

    /** The regions (each a {@link MappedRegion} in production, any {@link MemoryRegion} in tests). */
    public List<MemoryRegion> regions() {
        return view;
    }

    /**
     * Whether an access may fault because a region's file could not be sealed against shrinking
     * ({@link MappedRegion#canShrink()}). Code that touches such memory raises a pending fault
     * ({@link org.jvhost.engine.sys.LinuxSys#raisePendingFault()}) before it leaves its guard.
     */
    public boolean mayFault() {
        return mayFault;
    }

    /**
     * Holds every mapped region of this snapshot ({@link MappedRegion#hold}) for a request completed
     * later; {@link #release()} ends it. Any thread.
     */
    public void hold() {
        for (MappedRegion r : mapped) {
            r.hold();
        }
    }

    /** Ends a {@link #hold()}. Any thread. */
    public void release() {
        for (MappedRegion r : mapped) {
            r.release();
        }
    }

    /**
     * Translates a front-end virtual address (SET_VRING_ADDR's desc/avail/used) to a guest-physical
     * address, requiring {@code [userAddress, userAddress + len)} inside one region.
     *
     * @return the GPA, or -1 if no single region holds the range
     */
    public long userToGuest(long userAddress, long len) {
        if (len < 0) {
            return -1;
        }
        for (int i = 0; i < regions.length; i++) {
            long offset = userAddress - userStarts[i];
            // Unsigned: an address below the region start gives a huge offset and fails the first test;
            // comparing len against the room left (not offset + len against size) cannot wrap.
            if (Long.compareUnsigned(offset, sizes[i]) < 0 && Long.compareUnsigned(len, sizes[i] - offset) <= 0) {
                return starts[i] + offset;
            }
        }
        return -1;
    }

    @Override
    public MemoryRegion regionFor(long gpa) {
        // Binary search for the last region starting at or below gpa (unsigned order).
        int lo = 0;
        int hi = starts.length - 1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (Long.compareUnsigned(starts[mid], gpa) <= 0) {
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        if (hi < 0 || Long.compareUnsigned(gpa - starts[hi], sizes[hi]) >= 0) {
            return null;
        }
        return regions[hi];
    }

    @Override
    public int regionCount() {
        return regions.length;
    }

    @Override
    public MemoryRegion region(int i) {
        return regions[i];
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("GuestMemoryMap[");
        for (int i = 0; i < regions.length; i++) {
            sb.append(i == 0 ? "" : ", ").append(describe(regions[i]));
        }
        return sb.append(']').toString();
    }
}
