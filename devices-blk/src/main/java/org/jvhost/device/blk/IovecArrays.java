package org.jvhost.device.blk;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import org.jvhost.spi.DescriptorChain;

/**
 * One struct iovec array per {@link UringIo} slot, filled from a part of a descriptor chain: the guest's
 * own buffers by native address, for READV and WRITEV on the ring and for preadv2, so no byte is copied
 * in user space. Each array grows (to a power of two) to the longest part its slot has seen.
 *
 * <pre>
 * struct iovec (16 bytes): 0 u64 iov_base (native address)   8 u64 iov_len
 * </pre>
 *
 * <p>A slot's array is used by whoever holds the slot (one worker at a time).
 */
final class IovecArrays {
    /** The most segments one array holds (readv's UIO_MAXIOV). */
    static final int MAX_SEGMENTS = 1024;
    private static final int IOVEC_SIZE = 16;

    private final Memory[] arrays;

    IovecArrays(int slots) {
        this.arrays = new Memory[slots];
    }

    /** The native address of the slot's array, as last filled. */
    long address(int slot) {
        return Pointer.nativeValue(arrays[slot]);
    }

    /**
     * Writes the iovecs of the chain's part {@code from..from+len} into the slot's array (grown to fit);
     * returns their count, or -1 if the part spans more than {@link #MAX_SEGMENTS} segments.
     *
     * @throws IllegalStateException if guest memory is neither natively mapped nor in a direct buffer
     */
    int fill(int slot, DescriptorChain c, boolean writable, int from, int len) {
        int first = writable ? c.readableSegments() : 0;
        int end = writable ? c.segmentCount() : c.readableSegments();
        Memory m = array(slot, Math.min(end - first, MAX_SEGMENTS));
        int k = 0;
        int skip = from;
        int left = len;
        for (int i = first; i < end && left > 0; i++) {
            int segLen = c.segmentLength(i);
            if (skip >= segLen) {
                skip -= segLen;
                continue;
            }
            if (k == MAX_SEGMENTS) {
                return -1;
            }
            int n = Math.min(segLen - skip, left);
            m.setLong((long) k * IOVEC_SIZE, address(c, i) + skip);
            m.setLong((long) k * IOVEC_SIZE + 8, n);
            k++;
            left -= n;
            skip = 0;
        }
        return k;
    }

    /** The slot's iovec array, grown (to a power of two) to hold at least {@code count} entries. */
    private Memory array(int slot, int count) {
        Memory m = arrays[slot];
        if (m == null || m.size() < (long) count * IOVEC_SIZE) {
            m = arrays[slot] = new Memory((long) Integer.highestOneBit(Math.max(count, 8) * 2 - 1) * IOVEC_SIZE);
        }
        return m;
    }

    /** The segment's native address: guest memory the host mapped, or the test kit's direct buffers. */
    private static long address(DescriptorChain c, int i) {
        long a = c.segmentAddress(i);
        if (a == 0) {
            throw new IllegalStateException("guest memory is not natively mapped; io_uring needs addresses");
        }
        return a;
    }
}
