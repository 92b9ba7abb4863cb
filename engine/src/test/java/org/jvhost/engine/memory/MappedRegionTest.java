package org.jvhost.engine.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.jvhost.spi.MemoryRegion;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 30, unit = TimeUnit.SECONDS)
class MappedRegionTest {
    private static final long GIB = 1L << 30;
    private static final long MIB = 1L << 20;

    private int fd = -1;

    @BeforeEach
    void createFile() throws NativeException {
        fd = LinuxSys.memfdCreate("mapped-region-test", LinuxSys.MFD_CLOEXEC | LinuxSys.MFD_ALLOW_SEALING);
    }

    @AfterEach
    void closeFile() {
        LinuxSys.closeQuietly(fd);
    }

    private MappedRegion map(RegionSpec spec) throws Exception {
        return MappedRegion.map(spec, LinuxSys.dupCloexec(fd));
    }

    @Test
    void longAtTwoAndAHalfGibIsSeenThroughAnIndependentMapping() throws Exception {
        LinuxSys.truncate(fd, 3 * GIB); // sparse: tmpfs allocates only touched pages
        MappedRegion whole = map(new RegionSpec(0x1_0000_0000L, 3 * GIB, 0x7f00_0000_0000L, 0));
        MappedRegion tail = map(new RegionSpec(0, 4096, 0x1000, 2 * GIB + GIB / 2));
        try {
            long offset = 2 * GIB + GIB / 2;
            ByteBuffer w = whole.window(offset);
            w.putLong(whole.windowOffset(offset), 0x1122_3344_5566_7788L);
            assertEquals(0x1122_3344_5566_7788L, tail.window(0).getLong(0));
            tail.window(0).putInt(8, 0xcafe);
            assertEquals(0xcafe, w.getInt(whole.windowOffset(offset + 8)));
        } finally {
            whole.unmap();
            tail.unmap();
        }
    }

    @Test
    void windowsOverlapSoAnyStrideSizedRangeFitsOneWindow() throws Exception {
        LinuxSys.truncate(fd, 3 * GIB);
        MappedRegion r = map(new RegionSpec(0, 3 * GIB, 0, 0));
        try {
            for (long offset = 0; offset < 3 * GIB; offset += 96 * MIB + 4096) {
                long len = Math.min(MemoryRegion.WINDOW_STRIDE, 3 * GIB - offset);
                ByteBuffer w = r.window(offset);
                assertTrue(r.windowOffset(offset) + len <= w.capacity(), "offset 0x" + Long.toHexString(offset));
            }
        } finally {
            r.unmap();
        }
    }

    @Test
    void mmapOffsetIsHonoured() throws Exception {
        LinuxSys.truncate(fd, 4 * MIB);
        MappedRegion all = map(new RegionSpec(0, 4 * MIB, 0x10_0000_0000L, 0));
        MappedRegion fromOneMib = map(new RegionSpec(0x8000_0000L, 2 * MIB, 0x20_0000_0000L, MIB));
        try {
            all.window(0).putLong((int) MIB, 0xfeed_beefL);
            assertEquals(0xfeed_beefL, fromOneMib.window(0).getLong(0));
            assertEquals(all.nativeAddress() != 0, fromOneMib.nativeAddress() != 0);
        } finally {
            all.unmap();
            fromOneMib.unmap();
        }
    }

    @Test
    void unalignedMmapOffsetIsMappedFromThePageBelow() throws Exception {
        LinuxSys.truncate(fd, MIB);
        MappedRegion all = map(new RegionSpec(0, MIB, 0, 0));
        MappedRegion odd = map(new RegionSpec(0, 64, 0, 4096 + 100));
        try {
            all.window(0).put(4096 + 100, (byte) 0x5a);
            assertEquals(0x5a, odd.window(0).get(0));
            assertEquals(64, odd.window(0).capacity());
        } finally {
            all.unmap();
            odd.unmap();
        }
    }

    @Test
    void fileSmallerThanOffsetPlusSizeIsRefusedNamingTheRegion() throws Exception {
        LinuxSys.truncate(fd, 2 * MIB);
        RegionSpec spec = new RegionSpec(0x4000_0000L, 2 * MIB, 0x7000_0000L, MIB);
        MemoryMapException e = assertThrows(MemoryMapException.class, () -> map(spec));
        assertTrue(e.getMessage().contains("gpa=0x40000000"), e.getMessage());
        assertTrue(e.getMessage().contains("0x200000"), e.getMessage());
    }

    @Test
    void overflowingAndEmptySpecsAreRefused() throws Exception {
        LinuxSys.truncate(fd, MIB);
        assertThrows(MemoryMapException.class, () -> map(new RegionSpec(0, 0, 0, 0)));
        assertThrows(MemoryMapException.class, () -> map(new RegionSpec(-4096, 8192, 0, 0)));
        assertThrows(MemoryMapException.class, () -> map(new RegionSpec(0, 8192, -4096, 0)));
        assertThrows(MemoryMapException.class, () -> map(new RegionSpec(0, 8192, 0, Long.MAX_VALUE - 4096)));
    }

    @Test
    void mapClosesTheFdItWasGivenAndUnmapIsIdempotent() throws Exception {
        LinuxSys.truncate(fd, MIB);
        int owned = LinuxSys.dupCloexec(fd);
        MappedRegion r = MappedRegion.map(new RegionSpec(0, MIB, 0, 0), owned);
        r.window(0).putInt(0, 7); // the mapping survives the close
        assertThrows(NativeException.class, () -> LinuxSys.fileSize(owned));
        r.unmap();
        r.unmap();
    }

    @Test
    void failedMapAlsoClosesTheFd() throws Exception {
        int owned = LinuxSys.dupCloexec(fd);
        assertThrows(MemoryMapException.class, () -> MappedRegion.map(new RegionSpec(0, MIB, 0, 0), owned));
        assertThrows(NativeException.class, () -> LinuxSys.fileSize(owned));
    }
}
