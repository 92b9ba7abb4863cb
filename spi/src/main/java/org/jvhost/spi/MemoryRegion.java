package org.jvhost.spi;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * One guest-memory region. Regions may be larger than a {@link ByteBuffer} can address (2 GiB), so a
 * region is seen through <em>windows</em>: buffers of up to 1 GiB that start every {@link #WINDOW_STRIDE}
 * bytes. Any range of at most {@link #WINDOW_STRIDE} bytes lies inside the window that
 * {@link #window(long)} returns for its start, so no access ever straddles two windows.
 *
 * <pre>
 * region offset: 0        512M       1G        1.5G       2G
 * window 0:      [=====================)
 * window 1:                 [=====================)
 * window 2:                            [=====================)
 * </pre>
 *
 * Windows are the host's access path, shared between threads and queues: absolute get/put only,
 * never position or limit. A device that needs a buffer over guest memory takes
 * {@link #view(long, int)}, which is bounded and its own.
 */
public interface MemoryRegion {

    /** Distance between window starts (512 MiB); also the longest range one window is guaranteed to cover. */
    long WINDOW_STRIDE = 1L << 29;

    /** Guest-physical address of the region's first byte. */
    long guestAddress();

    /** Region size in bytes. */
    long size();

    /** The window holding {@code offset} (an offset into the region, {@code 0 <= offset < size()}). */
    ByteBuffer window(long offset);

    /** Where {@code offset} lies inside {@link #window(long)}. */
    default int windowOffset(long offset) {
        return (int) (offset & (WINDOW_STRIDE - 1));
    }

    /**
     * A little-endian buffer over exactly {@code [offset, offset + length)} of the region, position 0,
     * that the caller owns: its position and limit affect nothing else. Allocates; not for a per-frame
     * path.
     *
     * @throws IndexOutOfBoundsException if the range is not inside the region or is longer than
     *         {@link #WINDOW_STRIDE}
     * @since SPI 1.7
     */
    default ByteBuffer view(long offset, int length) {
        if (offset < 0 || length < 0 || length > WINDOW_STRIDE || offset > size() - length) {
            throw new IndexOutOfBoundsException(String.format("[0x%x, +0x%x) is not inside a region of 0x%x bytes",
                    offset, length, size()));
        }
        return window(offset).slice(windowOffset(offset), length).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Native address of the region's first byte, or 0 if the region is not natively mapped. */
    long nativeAddress();
}
