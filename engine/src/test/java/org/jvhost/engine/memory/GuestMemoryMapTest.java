package org.jvhost.engine.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.spi.MemoryRegion;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 30, unit = TimeUnit.SECONDS)
class GuestMemoryMapTest {
    private static final long MIB = 1L << 20;

    private int fd = -1;
    private final List<MappedRegion> mapped = new ArrayList<>();

    @BeforeEach
    void createFile() throws Exception {
        fd = LinuxSys.memfdCreate("guest-memory-map-test", LinuxSys.MFD_CLOEXEC);
        LinuxSys.truncate(fd, 16 * MIB);
    }

    @AfterEach
    void release() {
        mapped.forEach(MappedRegion::unmap);
        LinuxSys.closeQuietly(fd);
    }

    private MappedRegion region(long gpa, long size, long uaddr, long offset) throws Exception {
        MappedRegion r = MappedRegion.map(new RegionSpec(gpa, size, uaddr, offset), LinuxSys.dupCloexec(fd));
        mapped.add(r);
        return r;
    }

    @Test
    void emptyIsARealEmptySnapshot() {
        assertEquals(0, GuestMemoryMap.EMPTY.regionCount());
        assertNull(GuestMemoryMap.EMPTY.regionFor(0));
        assertFalse(GuestMemoryMap.EMPTY.contains(0, 1));
        assertEquals(-1, GuestMemoryMap.EMPTY.userToGuest(0, 1));
        assertTrue(GuestMemoryMap.EMPTY.regions().isEmpty());
    }

    @Test
    void regionsAreSortedAndLookedUpByGuestAddress() throws Exception {
        MappedRegion high = region(0x1_0000_0000L, 4 * MIB, 0x7f00_0040_0000L, 4 * MIB);
        MappedRegion low = region(0, 2 * MIB, 0x7f00_0000_0000L, 0);
        GuestMemoryMap m = GuestMemoryMap.of(List.of(high, low));
        assertSame(low, m.region(0));
        assertSame(high, m.region(1));
        assertSame(low, m.regionFor(0));
        assertSame(low, m.regionFor(2 * MIB - 1));
        assertNull(m.regionFor(2 * MIB));
        assertNull(m.regionFor(0xffff_ffffL));
        assertSame(high, m.regionFor(0x1_0000_0000L));
        assertSame(high, m.regionFor(0x1_0000_0000L + 4 * MIB - 1));
        assertNull(m.regionFor(0x1_0000_0000L + 4 * MIB));
        assertNull(m.regionFor(-1L));
        assertTrue(m.contains(2 * MIB - 8, 8));
        assertFalse(m.contains(2 * MIB - 8, 9));
        assertFalse(m.contains(2 * MIB - 8, -1L)); // a wrapping length
    }

    @Test
    void overlappingGuestRangesAreRefusedNamingBothRegions() throws Exception {
        MappedRegion a = region(0, 2 * MIB, 0x10_0000_0000L, 0);
        MappedRegion b = region(2 * MIB - 4096, 2 * MIB, 0x20_0000_0000L, 0);
        MemoryMapException e = assertThrows(MemoryMapException.class, () -> GuestMemoryMap.of(List.of(b, a)));
        assertTrue(e.getMessage().contains("gpa=0x0 ") && e.getMessage().contains("gpa=0x1ff000"), e.getMessage());
    }

    @Test
    void overlappingUserRangesAreRefusedNamingBothRegions() throws Exception {
        MappedRegion a = region(0, 2 * MIB, 0x10_0000_0000L, 0);
        MappedRegion b = region(0x4000_0000L, 2 * MIB, 0x10_0010_0000L, 0);
        MemoryMapException e = assertThrows(MemoryMapException.class, () -> GuestMemoryMap.of(List.of(a, b)));
        assertTrue(e.getMessage().contains("user") && e.getMessage().contains("uaddr=0x1000100000"),
                e.getMessage());
    }

    @Test
    void adjacentRegionsAreAccepted() throws Exception {
        MappedRegion a = region(0, 2 * MIB, 0x10_0000_0000L, 0);
        MappedRegion b = region(2 * MIB, 2 * MIB, 0x10_0000_0000L + 2 * MIB, 2 * MIB);
        GuestMemoryMap m = GuestMemoryMap.of(List.of(a, b));
        assertSame(b, m.regionFor(2 * MIB));
        assertFalse(m.contains(2 * MIB - 4, 8)); // inside memory, but not inside ONE region
    }

    @Test
    void userToGuestTranslatesOnlyRangesInsideOneRegion() throws Exception {
        long uaddr = 0x7f00_0000_0000L;
        MappedRegion a = region(0x1000_0000L, 2 * MIB, uaddr, 0);
        MappedRegion top = region(0x2000_0000L, 4096, -8192L, 0); // user range ends 4 KiB below 2^64
        GuestMemoryMap m = GuestMemoryMap.of(List.of(a, top));
        assertEquals(0x1000_0000L, m.userToGuest(uaddr, 16));
        assertEquals(0x1000_0000L + 0x1234, m.userToGuest(uaddr + 0x1234, 0x100));
        assertEquals(0x1000_0000L + 2 * MIB - 8, m.userToGuest(uaddr + 2 * MIB - 8, 8));
        assertEquals(-1, m.userToGuest(uaddr + 2 * MIB - 8, 9), "range crossing the region end");
        assertEquals(-1, m.userToGuest(uaddr - 1, 2), "range starting below the region");
        assertEquals(-1, m.userToGuest(uaddr + 2 * MIB, 1), "just past the region");
        assertEquals(-1, m.userToGuest(uaddr + 16, -1L), "length wrapping past 2^64");
        assertEquals(-1, m.userToGuest(uaddr + 16, Long.MAX_VALUE));
        assertEquals(0x2000_0000L + 4000, m.userToGuest(-4096L - 96, 96));
        assertEquals(-1, m.userToGuest(-4096L - 96, 97), "crossing the top region's end");
        assertEquals(-1, m.userToGuest(-16L, 32), "wrap-around past 2^64");
        assertEquals(-1, m.userToGuest(-8192L + 8, Long.MIN_VALUE + 8), "start + len wraps to a small value");
    }

    @Test
    void nonMappedRegionsUseTheirGuestAddressAsUserAddress() throws Exception {
        MemoryRegion plain = new MemoryRegion() {
            @Override public long guestAddress() { return 0x1000; }
            @Override public long size() { return 0x1000; }
            @Override public java.nio.ByteBuffer window(long offset) { return null; }
            @Override public long nativeAddress() { return 0; }
        };
        GuestMemoryMap m = GuestMemoryMap.of(List.of(plain));
        assertEquals(0x1800, m.userToGuest(0x1800, 0x800));
    }
}
