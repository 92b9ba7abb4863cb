package org.jvhost.bench;

import java.util.List;
import org.jvhost.engine.memory.DirtyLog;
import org.jvhost.engine.memory.GuestMemoryMap;
import org.jvhost.engine.memory.MappedRegion;
import org.jvhost.engine.memory.RegionSpec;
import org.jvhost.engine.memory.MemoryMapException;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;

/**
 * Guest memory as the host sees it in production: one memfd mapped MAP_SHARED as a {@link MappedRegion}
 * behind a {@link GuestMemoryMap}. Segments therefore carry native addresses and every access goes
 * through the region's real mmap window, as with a QEMU or testpmd front-end.
 */
final class MemfdGuest implements AutoCloseable {
    /** Where the benchmarks put guest RAM: an arbitrary, non-zero guest-physical address. */
    static final long GPA = 0x4000_0000L;
    /** A front-end virtual address for the region; only address translation would use it. */
    private static final long USER_ADDRESS = 0x7f00_0000_0000L;

    private final MappedRegion region;
    private final GuestMemoryMap memory;

    private MemfdGuest(MappedRegion region, GuestMemoryMap memory) {
        this.region = region;
        this.memory = memory;
    }

    /** A zero-filled guest RAM of {@code size} bytes at {@link #GPA}. */
    static MemfdGuest create(String name, long size) throws NativeException, MemoryMapException {
        int fd = LinuxSys.memfdCreate(name, LinuxSys.MFD_CLOEXEC | LinuxSys.MFD_ALLOW_SEALING);
        try {
            LinuxSys.truncate(fd, size);
        } catch (NativeException e) {
            LinuxSys.closeQuietly(fd);
            throw e;
        }
        MappedRegion region = MappedRegion.map(new RegionSpec(GPA, size, USER_ADDRESS, 0), fd); // takes the fd
        return new MemfdGuest(region, GuestMemoryMap.of(List.of(region)));
    }

    /**
     * A dirty-page log (as QEMU shares with SET_LOG_BASE: a sealed memfd) with a bit for every page
     * below guest address {@code end}.
     */
    static DirtyLog sharedLog(long end) throws NativeException, MemoryMapException {
        long size = end / 4096 / 8;
        int fd = LinuxSys.memfdCreate("bench-log", LinuxSys.MFD_CLOEXEC | LinuxSys.MFD_ALLOW_SEALING);
        try {
            LinuxSys.truncate(fd, size);
        } catch (NativeException e) {
            LinuxSys.closeQuietly(fd);
            throw e;
        }
        return DirtyLog.map(fd, size, 0); // takes the fd
    }

    GuestMemoryMap memory() {
        return memory;
    }

    @Override
    public void close() {
        region.unmap();
    }
}
