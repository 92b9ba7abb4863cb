package org.jvhost.engine.virtq;

/**
 * One entry of a packed virtqueue's descriptor ring (virtio 1.2 section 2.8.13, {@code struct
 * pvirtq_desc}), also the entry format of a packed indirect table (section 2.8.19). All fields
 * little-endian; the ring needs 16-byte alignment.
 *
 * <pre>
 * byte  0                               8               12      14      16
 *       +-------------------------------+---------------+-------+-------+
 *       | addr (le64, guest-physical)   | len (le32)    | id    | flags |
 *       +-------------------------------+---------------+-------+-------+
 * flags: 1 = NEXT (the buffer continues in the next ring entry), 2 = WRITE (device-writable),
 *        4 = INDIRECT, bit 7 = AVAIL, bit 15 = USED
 * id:    the buffer id; the driver puts it in the last descriptor of a buffer, the device returns it
 *        in the used descriptor it writes at the buffer's first position
 * </pre>
 *
 * A descriptor is available when AVAIL equals the device's avail wrap counter and USED does not; the
 * device marks a buffer used by writing both bits equal to its used wrap counter (section 2.8.1).
 */
public final class PackedDescriptorLayout {
    /** Bytes per descriptor. */
    public static final int SIZE = 16;
    public static final int ADDR = 0;
    public static final int LEN = 8;
    public static final int ID = 12;
    public static final int FLAGS = 14;

    /** VIRTQ_DESC_F_NEXT: the buffer continues in the next ring entry. */
    public static final int F_NEXT = 1;
    /** VIRTQ_DESC_F_WRITE: device write-only. */
    public static final int F_WRITE = 2;
    /** VIRTQ_DESC_F_INDIRECT: the descriptor points to a table of descriptors. */
    public static final int F_INDIRECT = 4;
    /** VIRTQ_DESC_F_AVAIL (bit 7). */
    public static final int F_AVAIL = 1 << 7;
    /** VIRTQ_DESC_F_USED (bit 15). */
    public static final int F_USED = 1 << 15;

    private PackedDescriptorLayout() {
    }

    /** Bytes of a descriptor ring with {@code queueSize} entries. */
    public static long ringBytes(int queueSize) {
        return (long) SIZE * queueSize;
    }

    /** True if {@code flags} mark a descriptor available for a device whose avail wrap counter is {@code wrap}. */
    public static boolean isAvailable(int flags, boolean wrap) {
        return ((flags & F_AVAIL) != 0) == wrap && ((flags & F_USED) != 0) != wrap;
    }

    /** The AVAIL and USED bits of a used descriptor written with used wrap counter {@code wrap}. */
    public static int usedFlags(boolean wrap) {
        return wrap ? F_AVAIL | F_USED : 0;
    }
}
