package org.jvhost.spi;

import java.nio.ByteBuffer;

/**
 * One descriptor chain popped from a {@link Virtqueue}: a device-readable part followed by a
 * device-writable part, each a sequence of guest-memory segments. Offsets in the copy methods count
 * bytes from the start of the readable part or of the writable part; the device never deals with
 * regions or guest addresses. Indirect tables are already flattened.
 *
 * <p>A chain object is reused: it is valid from {@link Virtqueue#pop} until the next pop into it.
 * The copy methods never throw for lengths beyond the chain; they return how much they copied.
 *
 * <h2>Zero-copy access</h2>
 * For native I/O (readv/writev) the segments are exposed directly: segment {@code i} is
 * {@link #segmentLength(int)} bytes at {@link #segmentOffset(int)} of the shared window
 * {@link #segmentBuffer(int)}. Windows are shared by every queue of the device: use only absolute
 * get/put on them, never change their position or limit. {@link #segmentAddress(int)} gives the
 * segment's native address when guest memory is natively mapped.
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

    /** The shared window holding segment {@code i}. */
    ByteBuffer segmentBuffer(int i);

    /** Where segment {@code i} starts inside {@link #segmentBuffer(int)}. */
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
}
