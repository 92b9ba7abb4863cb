package org.jvhost.engine.memory;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.jvhost.spi.MemoryRegion;

/**
 * A guest-memory region mapped MAP_SHARED from the fd the front-end sent with SET_MEM_TABLE or
 * ADD_MEM_REG. The whole region is one mapping; {@link MemoryRegion} windows of up to 1 GiB, starting
 * every {@link MemoryRegion#WINDOW_STRIDE} bytes, are created once here so the data path only indexes
 * an array.
 *
 * <p>The mapping outlives the fd: mmap keeps its own reference to the file, so the fd is closed as soon
 * as the mapping exists.
 */
public final class MappedRegion implements MemoryRegion {

    private static final long WINDOW_SIZE = 2 * WINDOW_STRIDE;
    private static final int STRIDE_SHIFT = Long.numberOfTrailingZeros(WINDOW_STRIDE);

    private final RegionSpec spec;
    private final long mapAddress;
    private final long mapLength;
    private final long nativeAddress;
    private final ByteBuffer[] windows;
    private boolean unmapped;

    private MappedRegion(RegionSpec spec, long mapAddress, long mapLength, long nativeAddress) {
        this.spec = spec;
        this.mapAddress = mapAddress;
        this.mapLength = mapLength;
        this.nativeAddress = nativeAddress;
        this.windows = createWindows(nativeAddress, spec.size());
    }

    /**
     * Maps {@code spec} from {@code fd}. Takes ownership of {@code fd} (an fd the engine owns, not one
     * junixsocket tracks) and closes it once mapped or on failure. Checks the file is large enough
     * ({@code mmapOffset + size <= file size}), seals it against shrinking where possible, and maps from
     * the offset aligned down to the fd's page size.
     */
    public static MappedRegion map(RegionSpec spec, int fd) throws MemoryMapException {
        try {
            checkSpec(spec);
            checkFileSize(spec, fd);
            // Sealing fails for files that do not support it (hugetlbfs, memfds without
            // MFD_ALLOW_SEALING); then the size check above is the only defence, which is fine.
            LinuxSys.sealShrink(fd);
            return mapChecked(spec, fd);
        } finally {
            LinuxSys.closeQuietly(fd);
        }
    }

    private static void checkSpec(RegionSpec spec) throws MemoryMapException {
        long size = spec.size();
        if (size <= 0) {
            throw new MemoryMapException(spec + ": size must be positive");
        }
        if (wraps(spec.guestAddress(), size)) {
            throw new MemoryMapException(spec + ": guest address + size overflows 2^64");
        }
        if (wraps(spec.userAddress(), size)) {
            throw new MemoryMapException(spec + ": user address + size overflows 2^64");
        }
        // off_t is signed: offset and offset + size must stay below 2^63.
        if (spec.mmapOffset() < 0 || spec.mmapOffset() + size < 0) {
            throw new MemoryMapException(spec + ": mmap offset + size overflows a file offset");
        }
    }

    /** True if {@code start + len} (unsigned) passes 2^64 - 1. */
    private static boolean wraps(long start, long len) {
        return Long.compareUnsigned(start, -1L - len) > 0;
    }

    /**
     * A file shorter than the region would let the guest's view end in SIGBUS on first access, which
     * kills the whole host; refuse it up front.
     */
    private static void checkFileSize(RegionSpec spec, int fd) throws MemoryMapException {
        long fileSize;
        try {
            fileSize = LinuxSys.fileSize(fd);
        } catch (NativeException e) {
            throw new MemoryMapException(spec + ": cannot size the file: " + e.getMessage(), e);
        }
        if (fileSize < spec.mmapOffset() + spec.size()) {
            throw new MemoryMapException(String.format("%s: file is only 0x%x bytes, needs offset + size = 0x%x",
                    spec, fileSize, spec.mmapOffset() + spec.size()));
        }
    }

    /**
     * Maps in the fd's own page size, learnt up front: hugetlbfs wants the offset (mmap) and the length
     * (munmap) in whole huge pages. Trying 4 KiB first and retrying on EINVAL is not enough: a 2 MiB-aligned
     * offset with a size that is not a whole number of huge pages maps fine (mmap rounds the length up
     * itself) and only munmap fails, leaking the pages.
     */
    private static MappedRegion mapChecked(RegionSpec spec, int fd) throws MemoryMapException {
        long pageSize;
        try {
            pageSize = LinuxSys.mappingPageSize(fd);
        } catch (NativeException e) {
            throw new MemoryMapException(spec + ": " + e.getMessage(), e);
        }
        long fileOffset = spec.mmapOffset() & -pageSize;
        long lead = spec.mmapOffset() - fileOffset;
        long length = roundUp(lead + spec.size(), pageSize);
        try {
            long address = LinuxSys.mmap(length, LinuxSys.PROT_READ | LinuxSys.PROT_WRITE, LinuxSys.MAP_SHARED,
                    fd, fileOffset);
            return new MappedRegion(spec, address, length, address + lead);
        } catch (NativeException e) {
            throw new MemoryMapException(String.format("%s: %s (mapping 0x%x bytes from file offset 0x%x in %d-byte pages)",
                    spec, e.getMessage(), length, fileOffset, pageSize), e);
        }
    }

    private static long roundUp(long value, long align) {
        return (value + align - 1) & -align;
    }

    private static ByteBuffer[] createWindows(long base, long size) {
        int count = (int) ((size + WINDOW_STRIDE - 1) / WINDOW_STRIDE);
        ByteBuffer[] result = new ByteBuffer[count];
        for (int i = 0; i < count; i++) {
            long start = i * WINDOW_STRIDE;
            long len = Math.min(WINDOW_SIZE, size - start);
            result[i] = LinuxSys.buffer(base + start, len).order(ByteOrder.LITTLE_ENDIAN);
        }
        return result;
    }

    /** The wire description this region was mapped from. */
    public RegionSpec spec() {
        return spec;
    }

    /** The front-end's virtual address of the region's first byte (ring addresses use these). */
    public long userAddress() {
        return spec.userAddress();
    }

    /** Unmaps the region. Idempotent. Only the control thread calls it, after no queue uses the region. */
    public void unmap() {
        if (unmapped) {
            return;
        }
        unmapped = true;
        try {
            LinuxSys.munmap(mapAddress, mapLength);
        } catch (NativeException e) {
            // munmap only fails for an invalid range, which would be our bug; nothing to roll back.
            throw new IllegalStateException(spec + ": " + e.getMessage(), e);
        }
    }

    @Override
    public long guestAddress() {
        return spec.guestAddress();
    }

    @Override
    public long size() {
        return spec.size();
    }

    @Override
    public ByteBuffer window(long offset) {
        return windows[(int) (offset >>> STRIDE_SHIFT)];
    }

    @Override
    public long nativeAddress() {
        return nativeAddress;
    }

    @Override
    public String toString() {
        return spec.toString();
    }
}
