package org.jvhost.device.net;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.jvhost.spi.DescriptorChain;

/**
 * {@link TapNatives#IOV_MAX} {@code struct iovec}s in native memory, allocated once, that readv/writev
 * (or their io_uring entries) take by address; filled from descriptor chains' segments.
 *
 * <pre>
 * entry i at address() + 16 * i:  | iov_base (8 bytes, native address) | iov_len (8 bytes) |
 * </pre>
 *
 * <p>Segments carry the native address of guest memory the host mapped (or of the test kit's direct
 * buffers). Used by one thread.
 */
final class IovecArray {
    private final String owner;
    private final Memory memory = new Memory((long) TapNatives.IOV_MAX * TapNatives.IOVEC_SIZE);
    private final ByteBuffer view = memory.getByteBuffer(0, memory.size()).order(ByteOrder.nativeOrder());
    private final long address = Pointer.nativeValue(memory);

    /** @param owner names the device in the error for memory that has no address */
    IovecArray(String owner) {
        this.owner = owner;
    }

    /** The native address of entry 0. */
    long address() {
        return address;
    }

    /** Entry {@code entry} := segment {@code segment} of {@code chain}. */
    void put(int entry, DescriptorChain chain, int segment) {
        view.putLong(entry * TapNatives.IOVEC_SIZE, segmentAddress(chain, segment));
        view.putLong(entry * TapNatives.IOVEC_SIZE + 8, chain.segmentLength(segment) & 0xffffffffL);
    }

    long base(int entry) {
        return view.getLong(entry * TapNatives.IOVEC_SIZE);
    }

    long length(int entry) {
        return view.getLong(entry * TapNatives.IOVEC_SIZE + 8);
    }

    /**
     * Moves {@code bytes} bytes from the memory entries {@code from}, {@code from + 1}, ... describe to the
     * memory of entries {@code to}, {@code to + 1}, ..., in ascending order (each piece with memmove), for
     * a frame read further along than where it is delivered ({@code to < from}). The entries from
     * {@code to} must cover {@code bytes}, and so must those from {@code from}.
     */
    void move(int from, int to, long bytes) {
        long fromOffset = 0;
        long toOffset = 0;
        while (bytes > 0) {
            long piece = Math.min(bytes, Math.min(length(from) - fromOffset, length(to) - toOffset));
            TapNatives.memmove(base(to) + toOffset, base(from) + fromOffset, piece);
            bytes -= piece;
            fromOffset += piece;
            toOffset += piece;
            if (fromOffset == length(from)) {
                from++;
                fromOffset = 0;
            }
            if (toOffset == length(to)) {
                to++;
                toOffset = 0;
            }
        }
    }

    private long segmentAddress(DescriptorChain chain, int i) {
        long a = chain.segmentAddress(i);
        if (a == 0) {
            throw new IllegalStateException(owner + ": chain head " + chain.head()
                    + ": guest memory is not natively mapped; readv/writev need addresses");
        }
        return a;
    }
}
