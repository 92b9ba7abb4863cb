package org.jvhost.engine.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
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
    void mapKeepsTheFdItWasGivenUntilUnmapWhichIsIdempotent() throws Exception {
        LinuxSys.truncate(fd, MIB);
        int owned = LinuxSys.dupCloexec(fd);
        MappedRegion r = MappedRegion.map(new RegionSpec(0, MIB, 0, 0), owned);
        r.window(0).putInt(0, 7);
        assertEquals(owned, r.fd(), "the region holds the fd a hot upgrade passes on");
        assertEquals(MIB, LinuxSys.fileSize(owned));
        r.unmap();
        assertClosed(owned, "unmap closes the fd");
        r.unmap();
    }

    /**
     * Issue 9: the file size came from lseek(SEEK_END), which moved the offset of a file description the
     * front-end shares with us, so its next write(2) on that fd landed at the end of the file.
     */
    @Test
    void sizingTheFileLeavesTheSharedFileOffsetAlone() throws Exception {
        LinuxSys.truncate(fd, 8192);
        assertEquals(8192, LinuxSys.fileSize(fd));
        try (com.sun.jna.Memory word = new com.sun.jna.Memory(4)) {
            word.setInt(0, 0x5a5a5a5a);
            assertEquals(4, LinuxSys.write(fd, com.sun.jna.Pointer.nativeValue(word), 4)); // at the offset: 0
        }
        assertEquals(8192, LinuxSys.fileSize(fd), "the write went to offset 0, not past the end");
    }

    @Test
    void aSealableFileIsSealedAndOneThatIsNotIsAcceptedAsShrinkable() throws Exception {
        LinuxSys.truncate(fd, MIB);
        MappedRegion sealed = map(new RegionSpec(0, MIB, 0, 0));
        int plainFd = LinuxSys.memfdCreate("no-sealing", LinuxSys.MFD_CLOEXEC);
        LinuxSys.truncate(plainFd, MIB);
        MappedRegion plain = MappedRegion.map(new RegionSpec(MIB, MIB, MIB, 0), plainFd);
        try {
            assertEquals(false, sealed.canShrink());
            assertThrows(NativeException.class, () -> LinuxSys.truncate(fd, 0), "F_SEAL_SHRINK refuses the shrink");
            assertTrue(plain.canShrink());
            assertEquals(false, GuestMemoryMap.of(List.of(sealed)).mayFault());
            assertTrue(GuestMemoryMap.of(List.of(sealed, plain)).mayFault());
            assertTrue(LinuxSys.sealShrink(LinuxSys.dupCloexec(fd)) , "a file sealed before counts as sealed");
        } finally {
            sealed.unmap();
            plain.unmap();
        }
    }

    /**
     * A request a device completes later holds the mapping: the table's unmap (a memory update, a
     * disconnect) leaves it mapped and its fd open until the last hold ends, from any thread.
     */
    @Test
    void aHeldRegionOutlivesTheTablesUnmapUntilTheLastRelease() throws Exception {
        LinuxSys.truncate(fd, MIB);
        int owned = LinuxSys.dupCloexec(fd);
        MappedRegion r = MappedRegion.map(new RegionSpec(0, MIB, 0, 0), owned);
        GuestMemoryMap snapshot = GuestMemoryMap.of(List.of(r));
        snapshot.hold();
        snapshot.hold();
        r.unmap();
        r.unmap(); // idempotent: the table's hold ends once
        r.window(0).putInt(64, 0x5a5a); // still mapped: a late device write lands in the guest's memory
        assertEquals(MIB, LinuxSys.fileSize(owned), "the fd stays open while held");
        Thread other = new Thread(snapshot::release);
        other.start();
        other.join();
        assertEquals(MIB, LinuxSys.fileSize(owned), "one hold is left");
        snapshot.release();
        assertClosed(owned, "the last release unmaps and closes the fd");
        assertThrows(IllegalStateException.class, r::hold, "an unmapped region cannot be held again");
    }

    @Test
    void failedMapAlsoClosesTheFd() throws Exception {
        int owned = LinuxSys.dupCloexec(fd);
        assertThrows(MemoryMapException.class, () -> MappedRegion.map(new RegionSpec(0, MIB, 0, 0), owned));
        assertClosed(owned, "a refused region closes its fd");
    }

    /**
     * The fd no longer names the test's memfd. Another thread of the test JVM may have opened a file
     * under the same number since it was closed, so "no such fd" is not required.
     */
    private static void assertClosed(int owned, String message) throws IOException {
        Path link = Path.of("/proc/self/fd/" + owned);
        String target = Files.isSymbolicLink(link) ? Files.readSymbolicLink(link).toString() : "";
        assertTrue(!target.startsWith("/memfd:mapped-region-test"), message + " (fd " + owned + " -> " + target + ")");
    }

    /**
     * hugetlbfs: mmap wants the offset, munmap the length in whole huge pages. A region at offset 0 whose
     * size is not a whole number of huge pages (QEMU before 3.0 sent guest RAM below the VGA hole as
     * 0xa0000 bytes at offset 0) used to map in 4 KiB units: mmap succeeded, rounding the length up
     * itself, and unmap then failed with EINVAL, leaking the huge pages. A region at offset 0xc0000 (the
     * RAM above the hole) must be mapped from the huge page below it, with the lead honoured.
     */
    @Test
    void hugetlbfsRegionsMapAndUnmapInHugePagesWhateverTheirOffsetAndSize() throws Exception {
        assertEquals(LinuxSys.SMALL_PAGE_SIZE, LinuxSys.mappingPageSize(fd), "page size of a tmpfs memfd");
        try (HugePageReservation ignored = HugePageReservation.of(4)) {
            int huge = LinuxSys.memfdCreate("mapped-region-huge", LinuxSys.MFD_CLOEXEC | LinuxSys.MFD_HUGETLB);
            try {
                assertEquals(2 * MIB, LinuxSys.mappingPageSize(huge), "page size of a MFD_HUGETLB memfd");
                LinuxSys.truncate(huge, 4 * MIB);
                MappedRegion low = MappedRegion.map(new RegionSpec(0, 0xa0000, 0x7f00_0000_0000L, 0), LinuxSys.dupCloexec(huge));
                MappedRegion high = MappedRegion.map(new RegionSpec(0xc0000, 4 * MIB - 0xc0000, 0x7f00_000c_0000L, 0xc0000),
                        LinuxSys.dupCloexec(huge));
                MappedRegion second = MappedRegion.map(new RegionSpec(0, 2 * MIB, 0x1000, 2 * MIB), LinuxSys.dupCloexec(huge));
                // File offset 2 MiB: 0x140000 into "high", 0 into "second".
                high.window(0x140000).putLong(high.windowOffset(0x140000), 0x0123_4567_89ab_cdefL);
                assertEquals(0x0123_4567_89ab_cdefL, second.window(0).getLong(0));
                low.window(0).putInt(0x9fffc, 42);
                assertEquals(42, low.window(0).getInt(0x9fffc));
                low.unmap();
                high.unmap();
                second.unmap();
            } finally {
                LinuxSys.closeQuietly(huge);
            }
        }
    }

    /**
     * Raises /proc/sys/vm/nr_hugepages by {@code pages} 2 MiB pages for one test and puts the old value
     * back; skips the test unless root, with 2 MiB huge pages, and the kernel finds the pages.
     */
    private record HugePageReservation(Path control, String old) implements AutoCloseable {
        static HugePageReservation of(int pages) throws IOException {
            Path control = Path.of("/proc/sys/vm/nr_hugepages");
            List<String> meminfo = Files.readAllLines(Path.of("/proc/meminfo"));
            assumeTrue(meminfo.contains("Hugepagesize:       2048 kB"), "no 2 MiB huge pages on this kernel");
            assumeTrue(Files.isWritable(control), "needs root to reserve huge pages in " + control);
            String old = Files.readString(control).trim();
            HugePageReservation r = new HugePageReservation(control, old);
            Files.writeString(control, String.valueOf(Long.parseLong(old) + pages));
            long free = Files.readAllLines(Path.of("/proc/meminfo")).stream().filter(l -> l.startsWith("HugePages_Free:"))
                    .mapToLong(l -> Long.parseLong(l.replaceAll("[^0-9]", ""))).findFirst().orElse(0);
            if (free < pages) {
                r.close();
                assumeTrue(false, "the kernel could reserve only " + free + " of " + pages + " huge pages");
            }
            return r;
        }

        @Override
        public void close() throws IOException {
            Files.writeString(control, old);
        }
    }
}
