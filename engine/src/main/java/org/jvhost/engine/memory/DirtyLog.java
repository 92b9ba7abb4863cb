package org.jvhost.engine.memory;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;

/**
 * The dirty-page log of a migration (vhost-user "Migration", SET_LOG_BASE): a bitmap in memory the
 * front-end shares, one bit per 4 KiB page of guest-physical memory, that the back-end sets for every
 * page it writes so the front-end sends that page again.
 * <pre>
 *  log byte:   0                     1                         n = page / 8
 *  bits:     [ p7 p6 p5 p4 p3 p2 p1 p0 ][ p15 ... p8 ] ... [ bit (page % 8) of byte n ]
 * </pre>
 * Bits are set with an atomic OR ({@link #or}): the front-end clears them while we set them, and a
 * plain read-modify-write would lose its clears or our sets (DPDK once shipped that, and migrations
 * stopped converging under load, commit bb77d555d4). Callers set a page's bit after they wrote the
 * page: the front-end clears a bit before it copies the page, so a bit set first could be cleared and
 * the page copied before our write lands.
 *
 * <p>The file must be sealed against shrinking (QEMU seals its log memfd): truncating it while a worker
 * writes would fault (SIGBUS) in the middle of an atomic instruction. Thread-safe; unmapped once, by
 * the control thread, after every ring that wrote it has switched away.
 */
public final class DirtyLog {
    /** Log granularity: one bit per 4 KiB page (VHOST_LOG_PAGE). */
    public static final int PAGE_SHIFT = 12;
    /** Largest log jvhost maps, which covers 64 TiB of guest memory (one buffer indexes it). */
    public static final long MAX_SIZE = 1L << 30;

    // 64-bit little-endian words: bit (page & 63) of word (page >>> 6) is page's bit of the byte layout
    private static final VarHandle WORD = MethodHandles.byteBufferViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    private final long mapAddress;
    private final long mapLength;
    private final ByteBuffer map;
    /** The log's first byte within the mapping, and that byte's offset from the 8-byte word holding it. */
    private final int lead;
    private final int misalignBits;
    private final long size;
    private boolean unmapped;

    private DirtyLog(long mapAddress, long mapLength, int lead, long size) {
        this.mapAddress = mapAddress;
        this.mapLength = mapLength;
        this.map = LinuxSys.buffer(mapAddress, mapLength).order(ByteOrder.LITTLE_ENDIAN);
        this.lead = lead;
        this.misalignBits = (lead & 7) * 8;
        this.size = size;
    }

    /**
     * Maps {@code size} bytes of log at {@code offset} in {@code fd}. Takes ownership of {@code fd} and
     * closes it (the mapping keeps the file).
     *
     * @throws MemoryMapException naming what is wrong: a zero or too large size, an offset that overflows,
     *                            a file shorter than offset + size, a file that can shrink, or mmap failing
     */
    public static DirtyLog map(int fd, long size, long offset) throws MemoryMapException {
        try {
            String what = String.format("log of 0x%x bytes at offset 0x%x", size, offset);
            if (size <= 0 || size > MAX_SIZE) {
                throw new MemoryMapException(what + ": size must be between 1 and 0x" + Long.toHexString(MAX_SIZE));
            }
            if (offset < 0 || offset > Long.MAX_VALUE - size) {
                throw new MemoryMapException(what + ": offset + size overflows a file offset");
            }
            checkFile(what, fd, offset + size);
            return mapChecked(what, fd, size, offset);
        } finally {
            LinuxSys.closeQuietly(fd);
        }
    }

    private static void checkFile(String what, int fd, long end) throws MemoryMapException {
        long fileSize;
        try {
            fileSize = LinuxSys.fileSize(fd);
        } catch (NativeException e) {
            throw new MemoryMapException(what + ": cannot size the log file: " + e.getMessage(), e);
        }
        if (fileSize < end) {
            throw new MemoryMapException(String.format("%s: the log file is only 0x%x bytes", what, fileSize));
        }
        if (!LinuxSys.sealShrink(fd)) {
            throw new MemoryMapException(what + ": the log file can shrink (it is not sealed with F_SEAL_SHRINK"
                    + " and refuses the seal); a truncation while rings log would fault");
        }
    }

    private static DirtyLog mapChecked(String what, int fd, long size, long offset) throws MemoryMapException {
        try {
            long pageSize = LinuxSys.mappingPageSize(fd);
            long fileOffset = offset & -pageSize;
            long lead = offset - fileOffset;
            long length = (lead + size + pageSize - 1) & -pageSize;
            if (length > Integer.MAX_VALUE) {
                throw new MemoryMapException(what + ": the mapping would pass 2 GiB");
            }
            long address = LinuxSys.mmap(length, LinuxSys.PROT_READ | LinuxSys.PROT_WRITE, LinuxSys.MAP_SHARED,
                    fd, fileOffset);
            return new DirtyLog(address, length, (int) lead, size);
        } catch (NativeException e) {
            throw new MemoryMapException(what + ": " + e.getMessage(), e);
        }
    }

    /** The log's size in bytes. */
    public long size() {
        return size;
    }

    /** How many pages the log has a bit for: guest-physical addresses below {@code pages() << 12}. */
    public long pages() {
        return size * 8;
    }

    /**
     * ORs {@code bits} into log word {@code word} (pages {@code 64 * word} to {@code 64 * word + 63}),
     * atomically. The caller keeps every bit below {@link #pages()}. A log whose offset is not 8-byte
     * aligned spreads the word over the two aligned words it straddles. Any thread.
     */
    public void or(long word, long bits) {
        int at = lead + (int) (word << 3) - (lead & 7);
        if (misalignBits == 0) {
            WORD.getAndBitwiseOr(map, at, bits);
            return;
        }
        WORD.getAndBitwiseOr(map, at, bits << misalignBits);
        long high = bits >>> (64 - misalignBits);
        if (high != 0) {
            WORD.getAndBitwiseOr(map, at + 8, high);
        }
    }

    /** Whether page {@code page}'s bit is set (tests, diagnostics). */
    public boolean isDirty(long page) {
        return (map.get(lead + (int) (page >>> 3)) & (1 << (page & 7))) != 0;
    }

    /** Unmaps the log; the rings must have switched away. Idempotent. Control thread. */
    public void unmap() {
        if (unmapped) {
            return;
        }
        unmapped = true;
        try {
            LinuxSys.munmap(mapAddress, mapLength);
        } catch (NativeException e) {
            throw new IllegalStateException("munmap of the dirty log failed: " + e.getMessage(), e);
        }
    }

    @Override
    public String toString() {
        return String.format("DirtyLog[0x%x bytes, %d pages]", size, pages());
    }
}
