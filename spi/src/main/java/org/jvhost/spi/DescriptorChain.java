package org.jvhost.spi;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * One descriptor chain popped from a {@link Virtqueue}: a device-readable part followed by a
 * device-writable part, each a sequence of guest-memory segments. Offsets in the copy methods count
 * bytes from the start of the readable part or of the writable part; the device never deals with
 * regions or guest addresses. Indirect tables are already flattened.
 *
 * <p>A chain object is reused: it is valid from {@link Virtqueue#pop} until the next pop into it.
 * The copy methods never throw for lengths beyond the chain; they return how much they copied.
 *
 * <h2>Headers and fields</h2>
 * Little-endian fields (virtio's byte order) are read and written in place, without a copy and without
 * allocating, by {@link #readLong(int)}, {@link #writeShort(int, short)} and their siblings. Unlike the
 * copy methods they throw when the field does not lie wholly inside the part: a short header is the
 * device's to report, not a value to guess.
 *
 * <h2>Zero-copy access</h2>
 * For native I/O (readv/writev) {@link #segmentAddress(int)} gives segment {@code i}'s native address
 * and {@link #segmentLength(int)} its length. For Java I/O (a FileChannel read into guest memory)
 * {@link #segmentView(int)} gives a buffer over exactly one segment that the caller owns, read-only if
 * the segment is device-readable.
 *
 * <p>{@link #segmentBuffer(int)} and {@link #segmentOffset(int)}, the SPI 1.0 way, expose the window
 * that holds a segment. That window covers guest memory beyond the segment, is writable even for a
 * device-readable segment, and is shared by every queue of the device, so a device that changes its
 * position or limit breaks the others. They stay for plugins built against SPI 1.0-1.6; new code uses
 * the methods above.
 */
public interface DescriptorChain {

    /** The head descriptor index, which identifies the chain in the used ring. */
    int head();

    /** Total bytes in the device-readable part. */
    int readableBytes();

    /** Total bytes in the device-writable part. */
    int writableBytes();

    /** Segments in the chain, readable ones first. */
    int segmentCount();

    /** How many of the first segments are device-readable. */
    int readableSegments();

    /**
     * The shared window holding segment {@code i}: absolute get/put only, never position or limit.
     *
     * @deprecated since SPI 1.7: the window reaches past the segment and is shared; use
     *             {@link #segmentView(int)}, {@link #segmentAddress(int)} or the field accessors
     */
    @Deprecated
    ByteBuffer segmentBuffer(int i);

    /**
     * Where segment {@code i} starts inside {@link #segmentBuffer(int)}.
     *
     * @deprecated since SPI 1.7, with {@link #segmentBuffer(int)}
     */
    @Deprecated
    int segmentOffset(int i);

    /** Length of segment {@code i} in bytes. */
    int segmentLength(int i);

    /** Native address of segment {@code i}, or 0 if guest memory is not natively mapped. */
    long segmentAddress(int i);

    /**
     * Copies from the readable part, starting {@code offset} bytes in, into {@code dst}.
     *
     * @return bytes copied: {@code min(len, readableBytes() - offset)}, or 0 if offset is past the end
     */
    int read(int offset, byte[] dst, int dstOffset, int len);

    /**
     * Copies {@code src} into the writable part, starting
     * {@code offset} bytes in.
     *
     * @return bytes copied: {@code min(len, writableBytes() - offset)}, or 0 if offset is past the end
     */
    int write(int offset, byte[] src, int srcOffset, int len);

    /**
     * Copies {@code len} bytes of this chain's readable part, starting at {@code srcOffset}, into
     * {@code dst}'s writable part starting at {@code dstOffset}; one memory-to-memory copy, no
     * intermediate buffer.
     *
     * @return bytes copied, limited by both chains
     */
    int copyTo(int srcOffset, DescriptorChain dst, int dstOffset, int len);

    /**
     * A buffer over exactly segment {@code i}: position 0, limit {@link #segmentLength(int)},
     * little-endian, and read-only if the segment is device-readable. Each call returns a new buffer that
     * the caller owns (its position and limit affect nothing else), so it allocates: use it on set-up
     * and fallback paths, such as a FileChannel transfer, not per frame.
     *
     * @since SPI 1.7
     */
    @SuppressWarnings("deprecation")
    default ByteBuffer segmentView(int i) {
        ByteBuffer view = segmentBuffer(i).slice(segmentOffset(i), segmentLength(i));
        if (i < readableSegments()) {
            view = view.asReadOnlyBuffer();
        }
        return view.order(ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * The byte {@code offset} bytes into the readable part.
     *
     * @throws IndexOutOfBoundsException if it is not inside the readable part
     * @since SPI 1.7
     */
    default byte readByte(int offset) {
        return (byte) readLittleEndian(this, offset, Byte.BYTES);
    }

    /** Like {@link #readByte(int)}, for a little-endian 16-bit field. @since SPI 1.7 */
    default short readShort(int offset) {
        return (short) readLittleEndian(this, offset, Short.BYTES);
    }

    /** Like {@link #readByte(int)}, for a little-endian 32-bit field. @since SPI 1.7 */
    default int readInt(int offset) {
        return (int) readLittleEndian(this, offset, Integer.BYTES);
    }

    /** Like {@link #readByte(int)}, for a little-endian 64-bit field. @since SPI 1.7 */
    default long readLong(int offset) {
        return readLittleEndian(this, offset, Long.BYTES);
    }

    /**
     * Writes {@code value} {@code offset} bytes into the writable part.
     *
     * @throws IndexOutOfBoundsException if it is not inside the writable part
     * @since SPI 1.7
     */
    default void writeByte(int offset, byte value) {
        writeLittleEndian(this, offset, Byte.BYTES, value);
    }

    /** Like {@link #writeByte(int, byte)}, for a little-endian 16-bit field. @since SPI 1.7 */
    default void writeShort(int offset, short value) {
        writeLittleEndian(this, offset, Short.BYTES, value);
    }

    /** Like {@link #writeByte(int, byte)}, for a little-endian 32-bit field. @since SPI 1.7 */
    default void writeInt(int offset, int value) {
        writeLittleEndian(this, offset, Integer.BYTES, value);
    }

    /** Like {@link #writeByte(int, byte)}, for a little-endian 64-bit field. @since SPI 1.7 */
    default void writeLong(int offset, long value) {
        writeLittleEndian(this, offset, Long.BYTES, value);
    }

    /**
     * The field accessors over the copy methods, for implementations that have nothing faster (the host's
     * own chains override them with in-place access). Allocates a few bytes per call.
     */
    private static long readLittleEndian(DescriptorChain c, int offset, int size) {
        Objects.checkFromIndexSize(offset, size, c.readableBytes());
        byte[] b = new byte[size];
        c.read(offset, b, 0, size);
        long v = 0;
        for (int i = size - 1; i >= 0; i--) {
            v = (v << 8) | (b[i] & 0xff);
        }
        return v;
    }

    private static void writeLittleEndian(DescriptorChain c, int offset, int size, long value) {
        Objects.checkFromIndexSize(offset, size, c.writableBytes());
        byte[] b = new byte[size];
        for (int i = 0; i < size; i++) {
            b[i] = (byte) (value >>> (8 * i));
        }
        c.write(offset, b, 0, size);
    }
}
