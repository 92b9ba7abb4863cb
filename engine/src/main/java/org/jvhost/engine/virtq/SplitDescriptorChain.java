package org.jvhost.engine.virtq;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Objects;
import org.jvhost.spi.DescriptorChain;

/**
 * A flattened descriptor chain filled by {@link SplitQueue#pop}. Each segment is a range of a shared
 * guest-memory window; arrays are sized to the ring size at creation (a chain never has more
 * descriptors than the ring, which pop enforces), so filling and copying never allocate.
 *
 * <p>All copies use absolute bulk operations so the shared windows' position and limit are never
 * touched.
 */
final class SplitDescriptorChain implements DescriptorChain {

    /** Scratch size for copies into a chain of a foreign implementation. */
    private static final int SCRATCH = 2048;

    private final ByteBuffer[] buffers;
    private final int[] offsets;
    private final int[] lengths;
    private final long[] addresses;
    private final long[] guestAddresses;
    private byte[] scratch;
    /** Where the field {@link #locate} found lies in its segment's window. */
    private int fieldPosition;

    private int head;
    private int count;
    private int readableSegments;
    private int readableBytes;
    private int writableBytes;

    SplitDescriptorChain(int capacity) {
        buffers = new ByteBuffer[capacity];
        offsets = new int[capacity];
        lengths = new int[capacity];
        addresses = new long[capacity];
        guestAddresses = new long[capacity];
    }

    int capacity() {
        return buffers.length;
    }

    void reset(int headIndex) {
        head = headIndex;
        count = 0;
        readableSegments = 0;
        readableBytes = 0;
        writableBytes = 0;
    }

    /** Sets the id the chain is returned under (a packed ring's buffer id, known at the chain's end). */
    void setHead(int id) {
        head = id;
    }

    /**
     * Appends a segment. The caller has checked that readable segments precede writable ones, that the
     * totals stay within int range and that there is room.
     */
    void add(ByteBuffer buffer, int offset, int length, long address, long guestAddress, boolean writable) {
        buffers[count] = buffer;
        guestAddresses[count] = guestAddress;
        offsets[count] = offset;
        lengths[count] = length;
        addresses[count] = address;
        count++;
        if (writable) {
            writableBytes += length;
        } else {
            readableSegments++;
            readableBytes += length;
        }
    }

    /** The guest-physical address of segment {@code i} (for the dirty log). */
    long guestAddress(int i) {
        return guestAddresses[i];
    }

    @Override public int head() { return head; }
    @Override public int readableBytes() { return readableBytes; }
    @Override public int writableBytes() { return writableBytes; }
    @Override public int segmentCount() { return count; }
    @Override public int readableSegments() { return readableSegments; }
    @Deprecated @Override public ByteBuffer segmentBuffer(int i) { return buffers[checkSegment(i)]; }
    @Deprecated @Override public int segmentOffset(int i) { return offsets[checkSegment(i)]; }
    @Override public int segmentLength(int i) { return lengths[checkSegment(i)]; }
    @Override public long segmentAddress(int i) { return addresses[checkSegment(i)]; }

    private int checkSegment(int i) {
        if (i < 0 || i >= count) {
            throw new IndexOutOfBoundsException("segment " + i + " of " + count);
        }
        return i;
    }

    @Override
    public int read(int offset, byte[] dst, int dstOffset, int len) {
        int n = clamp(offset, len, readableBytes);
        if (n == 0) {
            return 0;
        }
        Objects.checkFromIndexSize(dstOffset, n, dst.length);
        int seg = 0;
        int skip = offset;
        while (skip >= lengths[seg]) {
            skip -= lengths[seg++];
        }
        int done = 0;
        while (done < n) {
            int chunk = Math.min(lengths[seg] - skip, n - done);
            buffers[seg].get(offsets[seg] + skip, dst, dstOffset + done, chunk);
            done += chunk;
            seg++;
            skip = 0;
        }
        return n;
    }

    @Override
    public int write(int offset, byte[] src, int srcOffset, int len) {
        int n = clamp(offset, len, writableBytes);
        if (n == 0) {
            return 0;
        }
        Objects.checkFromIndexSize(srcOffset, n, src.length);
        int seg = readableSegments;
        int skip = offset;
        while (skip >= lengths[seg]) {
            skip -= lengths[seg++];
        }
        int done = 0;
        while (done < n) {
            int chunk = Math.min(lengths[seg] - skip, n - done);
            buffers[seg].put(offsets[seg] + skip, src, srcOffset + done, chunk);
            done += chunk;
            seg++;
            skip = 0;
        }
        return n;
    }

    @Override
    public int copyTo(int srcOffset, DescriptorChain dst, int dstOffset, int len) {
        if (dst instanceof SplitDescriptorChain) {
            return copyDirect(srcOffset, (SplitDescriptorChain) dst, dstOffset, len);
        }
        return copyThroughScratch(srcOffset, dst, dstOffset, len);
    }

    /** Memory-to-memory copy between two chains of this implementation: walk both segment lists at once. */
    private int copyDirect(int srcOffset, SplitDescriptorChain dst, int dstOffset, int len) {
        int n = Math.min(clamp(srcOffset, len, readableBytes), clamp(dstOffset, len, dst.writableBytes));
        if (n == 0) {
            return 0;
        }
        int s = 0;
        int sSkip = srcOffset;
        while (sSkip >= lengths[s]) {
            sSkip -= lengths[s++];
        }
        int d = dst.readableSegments;
        int dSkip = dstOffset;
        while (dSkip >= dst.lengths[d]) {
            dSkip -= dst.lengths[d++];
        }
        int done = 0;
        while (done < n) {
            int chunk = Math.min(Math.min(lengths[s] - sSkip, dst.lengths[d] - dSkip), n - done);
            dst.buffers[d].put(dst.offsets[d] + dSkip, buffers[s], offsets[s] + sSkip, chunk);
            done += chunk;
            sSkip += chunk;
            dSkip += chunk;
            if (sSkip == lengths[s]) {
                s++;
                sSkip = 0;
            }
            if (dSkip == dst.lengths[d]) {
                d++;
                dSkip = 0;
            }
        }
        return n;
    }

    /** A destination of another implementation (a test double): bounce through a per-chain buffer. */
    private int copyThroughScratch(int srcOffset, DescriptorChain dst, int dstOffset, int len) {
        if (scratch == null) {
            scratch = new byte[SCRATCH]; // once per chain, only for foreign destinations
        }
        int done = 0;
        while (done < len) {
            int want = Math.min(SCRATCH, len - done);
            int got = read(srcOffset + done, scratch, 0, want);
            int put = got == 0 ? 0 : dst.write(dstOffset + done, scratch, 0, got);
            done += put;
            if (put < want) {
                break; // one side ran out
            }
        }
        return done;
    }

    /** Bytes available from {@code offset} in a part of {@code total} bytes, limited to {@code len}. */
    private static int clamp(int offset, int len, int total) {
        if (offset < 0 || len <= 0 || offset >= total) {
            return 0;
        }
        return Math.min(len, total - offset);
    }

    @Override
    public ByteBuffer segmentView(int i) {
        ByteBuffer view = buffers[checkSegment(i)].slice(offsets[i], lengths[i]);
        return (i < readableSegments ? view.asReadOnlyBuffer() : view).order(ByteOrder.LITTLE_ENDIAN);
    }

    // Field accessors: in place on the window when the field lies in one segment (the usual case: a
    // header in the first segment), byte by byte across a segment boundary. Windows may be of either
    // byte order; fields are little-endian. Each size is a constant once inlined.

    @Override public byte readByte(int offset) { return (byte) get(offset, Byte.BYTES); }
    @Override public short readShort(int offset) { return (short) get(offset, Short.BYTES); }
    @Override public int readInt(int offset) { return (int) get(offset, Integer.BYTES); }
    @Override public long readLong(int offset) { return get(offset, Long.BYTES); }
    @Override public void writeByte(int offset, byte value) { put(offset, Byte.BYTES, value); }
    @Override public void writeShort(int offset, short value) { put(offset, Short.BYTES, value); }
    @Override public void writeInt(int offset, int value) { put(offset, Integer.BYTES, value); }
    @Override public void writeLong(int offset, long value) { put(offset, Long.BYTES, value); }

    private long get(int offset, int size) {
        int seg = locate(0, offset, size, readableBytes);
        if (seg < 0) {
            long v = 0;
            for (int i = size - 1; i >= 0; i--) {
                v = (v << 8) | (get(offset + i, 1) & 0xff);
            }
            return v;
        }
        ByteBuffer b = buffers[seg];
        boolean little = b.order() == ByteOrder.LITTLE_ENDIAN;
        switch (size) {
            case 1:
                return b.get(fieldPosition);
            case 2:
                short s = b.getShort(fieldPosition);
                return little ? s : Short.reverseBytes(s);
            case 4:
                int i = b.getInt(fieldPosition);
                return little ? i : Integer.reverseBytes(i);
            default:
                long l = b.getLong(fieldPosition);
                return little ? l : Long.reverseBytes(l);
        }
    }

    private void put(int offset, int size, long value) {
        int seg = locate(readableSegments, offset, size, writableBytes);
        if (seg < 0) {
            for (int i = 0; i < size; i++) {
                put(offset + i, 1, value >>> (8 * i));
            }
            return;
        }
        ByteBuffer b = buffers[seg];
        boolean little = b.order() == ByteOrder.LITTLE_ENDIAN;
        switch (size) {
            case 1:
                b.put(fieldPosition, (byte) value);
                break;
            case 2:
                b.putShort(fieldPosition, little ? (short) value : Short.reverseBytes((short) value));
                break;
            case 4:
                b.putInt(fieldPosition, little ? (int) value : Integer.reverseBytes((int) value));
                break;
            default:
                b.putLong(fieldPosition, little ? value : Long.reverseBytes(value));
        }
    }

    /**
     * The segment holding {@code size} bytes at {@code offset} of the part whose segments start at
     * {@code first} and hold {@code total} bytes, with {@link #fieldPosition} set to where they start in
     * its window; -1 if they run into the next segment.
     *
     * @throws IndexOutOfBoundsException if the field is not inside the part
     */
    private int locate(int first, int offset, int size, int total) {
        Objects.checkFromIndexSize(offset, size, total);
        int seg = first;
        int skip = offset;
        while (skip >= lengths[seg]) {
            skip -= lengths[seg++];
        }
        if (lengths[seg] - skip < size) {
            return -1;
        }
        fieldPosition = offsets[seg] + skip;
        return seg;
    }
}
