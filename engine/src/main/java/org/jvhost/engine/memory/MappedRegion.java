package org.jvhost.engine.memory;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.jvhost.spi.MemoryRegion;

/**
 * A guest-memory region mapped MAP_SHARED from the fd the front-end sent with SET_MEM_TABLE or
 * ADD_MEM_REG. The whole region is one mapping; {@link MemoryRegion} windows of up to 1 GiB, starting
 * every {@link MemoryRegion#WINDOW_STRIDE} bytes, are created once here so the data path only indexes
 * an array.
 *
 * <p>The fd is kept open with the mapping (one fd per region) and closed when it is unmapped: a hot
 * upgrade passes it to the next jvhost process, which maps it again. Its length counts against a {@link MemoryBudget.Account} until it is unmapped.
 *
 * <h2>Files that can shrink</h2>
 * A file is sealed against shrinking (F_SEAL_SHRINK) when it is mapped, if it allows that. Many cannot
 * be sealed: a memfd made without MFD_ALLOW_SEALING or already sealed with F_SEAL_SEAL, and every
 * hugetlbfs, tmpfs or regular file, which is what QEMU's {@code memory-backend-file} gives on huge
 * pages. Refusing those would refuse real guests, so they are accepted and {@link #canShrink()} says
 * so. If the front-end then truncates such a file, the next access to the lost pages raises SIGBUS,
 * which HotSpot turns into an {@link InternalError} delivered later; the event loop raises it inside
 * the callback that faulted ({@link org.jvhost.engine.sys.LinuxSys#raisePendingFault()}) and fails that
 * device alone (see {@link org.jvhost.engine.device.DeviceRuntime}).
 */
public final class MappedRegion implements MemoryRegion {

    private static final long WINDOW_SIZE = 2 * WINDOW_STRIDE;
    private static final int STRIDE_SHIFT = Long.numberOfTrailingZeros(WINDOW_STRIDE);

    private final RegionSpec spec;
    private final long mapAddress;
    private final long mapLength;
    private final long nativeAddress;
    private final ByteBuffer[] windows;
    private final boolean canShrink;
    /** fstat's {st_dev, st_ino} of the file mapped. */
    private final long[] file;
    /** Where the mapping's length is counted; null if it is not (tests, benchmarks). */
    private final MemoryBudget.Account account;
    /**
     * The file mapped, kept open until {@link #unmap()}: a hot upgrade hands it to the next jvhost
     * process (the mapping alone cannot be passed on). One fd per region.
     */
    private final int fd;
    /** The table let go ({@link #unmap}); control thread. */
    private boolean unmapped;
    /** The table's hold (until {@link #unmap}) plus one per deferred chain that may touch the region. */
    private final AtomicInteger holds = new AtomicInteger(1);

    private MappedRegion(RegionSpec spec, int fd, long mapAddress, long mapLength, long nativeAddress,
                         boolean canShrink, long[] file, MemoryBudget.Account account) {
        this.spec = spec;
        this.fd = fd;
        this.mapAddress = mapAddress;
        this.mapLength = mapLength;
        this.nativeAddress = nativeAddress;
        this.canShrink = canShrink;
        this.file = file;
        this.account = account;
        this.windows = createWindows(nativeAddress, spec.size());
    }

    /**
     * Maps {@code spec} from {@code fd}, counting the mapping against {@code account}. Takes ownership of
     * {@code fd} (an fd the engine owns, not one junixsocket tracks): it is closed on failure, else kept
     * until {@link #unmap()} ({@link #fd()}). Checks the file is large enough
     * ({@code mmapOffset + size <= file size}), seals it against shrinking where possible, and maps from the offset aligned down to the fd's page size.
     *
     * @throws MemoryMapException if the region is inconsistent, the file too small, the mapping would pass
     *                            a limit of the account's budget, or mmap fails
     */
    public static MappedRegion map(RegionSpec spec, int fd, MemoryBudget.Account account) throws MemoryMapException {
        try {
            checkSpec(spec);
            checkFileSize(spec, fd);
            boolean sealed = LinuxSys.sealShrink(fd);
            return mapChecked(spec, fd, !sealed, account);
        } catch (MemoryMapException | RuntimeException e) {
            LinuxSys.closeQuietly(fd);
            throw e;
        }
    }

    /** {@link #map(RegionSpec, int, MemoryBudget.Account)} without counting the mapping (tests, benchmarks). */
    public static MappedRegion map(RegionSpec spec, int fd) throws MemoryMapException {
        return map(spec, fd, null);
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
     * A file shorter than the region would fault (SIGBUS) on the first access past its end; refuse it up
     * front.
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
    private static MappedRegion mapChecked(RegionSpec spec, int fd, boolean canShrink, MemoryBudget.Account account)
            throws MemoryMapException {
        long pageSize;
        long[] file;
        try {
            pageSize = LinuxSys.mappingPageSize(fd);
            file = LinuxSys.fileIdentity(fd);
        } catch (NativeException e) {
            throw new MemoryMapException(spec + ": " + e.getMessage(), e);
        }
        long fileOffset = spec.mmapOffset() & -pageSize;
        long lead = spec.mmapOffset() - fileOffset;
        long length = roundUp(lead + spec.size(), pageSize);
        if (account != null) {
            account.reserve(length, spec);
        }
        try {
            long address = LinuxSys.mmap(length, LinuxSys.PROT_READ | LinuxSys.PROT_WRITE, LinuxSys.MAP_SHARED,
                    fd, fileOffset);
            return new MappedRegion(spec, fd, address, length, address + lead, canShrink, file, account);
        } catch (NativeException e) {
            if (account != null) {
                account.release(length);
            }
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

    /** The file mapped (owned by the region; valid until {@link #unmap()}), for a hot upgrade to pass on. */
    public int fd() {
        return fd;
    }

    /** The wire description this region was mapped from. */
    public RegionSpec spec() {
        return spec;
    }

    /** The front-end's virtual address of the region's first byte (ring addresses use these). */
    public long userAddress() {
        return spec.userAddress();
    }

    /**
     * Whether this region maps exactly what {@code spec} over {@code fd} describes: the same addresses,
     * size and offset, in the same file. A SET_MEM_TABLE that repeats a region (QEMU sends the whole table
     * again whenever its layout changes) then keeps the mapping instead of mapping the file twice.
     */
    public boolean isMappingOf(RegionSpec spec, int fd) {
        try {
            return !unmapped && this.spec.equals(spec) && Arrays.equals(file, LinuxSys.fileIdentity(fd));
        } catch (NativeException e) {
            return false; // not a file we can compare: map it anew, and let map report the problem
        }
    }

    /**
     * Whether the file behind the region could not be sealed against shrinking, so an access may fault if
     * the front-end truncates it (see the class comment).
     */
    public boolean canShrink() {
        return canShrink;
    }

    /**
     * The memory table lets go of the region: it is unmapped, its fd closed and its length returned to
     * the budget once no deferred chain holds it ({@link #hold}), which is at once in the common case.
     * Idempotent. Only the control thread calls it, after no queue uses the region.
     */
    public void unmap() {
        if (unmapped) {
            return;
        }
        unmapped = true;
        release();
    }

    /**
     * Keeps the mapping alive for a request a device completes later, from another thread, over buffers
     * that point into it: a memory update or a disconnect that comes meanwhile must not unmap memory the
     * device may still write (the address range could be mapped again for something else). The region
     * must still be in the table: the worker holds it while its queue uses it. Any thread.
     *
     * @throws IllegalStateException if the region is already unmapped (our bug)
     */
    public void hold() {
        int n;
        do {
            n = holds.get();
            if (n == 0) {
                throw new IllegalStateException(spec + ": held after it was unmapped");
            }
        } while (!holds.compareAndSet(n, n + 1));
    }

    /** Ends a {@link #hold()} or the table's own hold; the last one unmaps. Any thread. */
    public void release() {
        if (holds.decrementAndGet() != 0) {
            return;
        }
        LinuxSys.closeQuietly(fd);
        try {
            LinuxSys.munmap(mapAddress, mapLength);
        } catch (NativeException e) {
            // munmap only fails for an invalid range, which would be our bug; nothing to roll back.
            throw new IllegalStateException(spec + ": " + e.getMessage(), e);
        }
        if (account != null) {
            account.release(mapLength);
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
