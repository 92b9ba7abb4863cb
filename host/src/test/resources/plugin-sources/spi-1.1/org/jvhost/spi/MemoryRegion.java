package org.jvhost.spi;

import java.nio.ByteBuffer;

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
 * Windows are shared between threads: use absolute get/put only, never position or limit.
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

    /** Native address of the region's first byte, or 0 if the region is not natively mapped. */
    long nativeAddress();
}
