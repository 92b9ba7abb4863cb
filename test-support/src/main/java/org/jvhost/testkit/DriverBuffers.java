package org.jvhost.testkit;

import java.util.HashMap;
import java.util.Map;
import org.jvhost.spi.GuestMemory;

/**
 * The data area of a mock driver ({@link MockSplitQueue}, {@link MockPackedQueue}): buffers come from a
 * cyclic bump allocator, and the writable ranges of each outstanding chain are kept by its id (a split
 * ring's head, a packed ring's buffer id) so a test can read back what the device wrote.
 */
final class DriverBuffers {
    static final long PAGE = 4096;

    private final GuestMemory memory;
    private final long gpa;
    private final long size;
    /** What an id names in messages: "chain with head" or "buffer with id". */
    private final String idName;
    /** Writable buffers of each outstanding chain, by id: pairs of (gpa, len). */
    private final Map<Integer, long[]> writableById = new HashMap<>();
    private long cursor;

    /** A data area of {@code [gpa, gpa + size)} in {@code memory}, which must cover it. */
    DriverBuffers(GuestMemory memory, long gpa, long size, String idName) {
        GuestAccess.slice(memory, gpa, (int) size); // validates the data area
        this.memory = memory;
        this.gpa = gpa;
        this.size = size;
        this.idName = idName;
    }

    static long roundUp(long n) {
        return (n + PAGE - 1) & -PAGE;
    }

    static void checkCount(int count, int max) {
        if (count < 1 || count > max) {
            throw new IllegalArgumentException("a chain needs 1.." + max + " buffers, not " + count);
        }
    }

    long gpa() {
        return gpa;
    }

    long size() {
        return size;
    }

    /** Allocates {@code len} bytes (16-byte aligned), wrapping to the area's start when the end is reached. */
    long allocate(int len) {
        long aligned = (len + 15L) & -16L;
        if (aligned > size) {
            throw new IllegalArgumentException("buffer of " + len + " bytes exceeds the data area of " + size);
        }
        if (cursor + aligned > size) {
            cursor = 0;
        }
        long addr = gpa + cursor;
        cursor += aligned;
        return addr;
    }

    /** Buffer {@code k} of a chain of {@code readable} then {@code writableLengths.length} buffers: its length. */
    static int length(int k, byte[][] readable, int[] writableLengths) {
        return k < readable.length ? readable[k].length : writableLengths[k - readable.length];
    }

    /**
     * Allocates buffer {@code k} of a chain, copying a readable one's bytes in and recording a writable
     * one's range in {@code writable} (pairs of gpa, len); returns its guest address.
     */
    long buffer(int k, byte[][] readable, int[] writableLengths, long[] writable) {
        if (k < readable.length) {
            long addr = allocate(readable[k].length);
            if (readable[k].length > 0) {
                GuestAccess.write(memory, addr, readable[k]);
            }
            return addr;
        }
        int w = k - readable.length;
        long addr = allocate(writableLengths[w]);
        writable[2 * w] = addr;
        writable[2 * w + 1] = writableLengths[w];
        return addr;
    }

    /** Remembers the writable ranges of the chain just made available as {@code id}. */
    void record(int id, long[] writable) {
        writableById.put(id, writable);
    }

    /** The writable ranges of chain {@code id} as guest address, length pairs (a copy). */
    long[] writable(int id) {
        return ranges(id).clone();
    }

    /** The first {@code len} bytes the device wrote into the writable buffers of chain {@code id}. */
    byte[] written(int id, int len) {
        long[] writable = ranges(id);
        byte[] result = new byte[len];
        int done = 0;
        for (int w = 0; w < writable.length && done < len; w += 2) {
            int chunk = (int) Math.min(writable[w + 1], len - done);
            System.arraycopy(GuestAccess.read(memory, writable[w], chunk), 0, result, done, chunk);
            done += chunk;
        }
        if (done < len) {
            throw new IllegalArgumentException(idName + " " + id + " has only " + done + " writable bytes");
        }
        return result;
    }

    private long[] ranges(int id) {
        long[] writable = writableById.get(id);
        if (writable == null) {
            throw new IllegalArgumentException("no " + idName + " " + id + " was added");
        }
        return writable;
    }
}
