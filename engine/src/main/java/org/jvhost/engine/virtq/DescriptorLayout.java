package org.jvhost.engine.virtq;

/**
 * One entry of the descriptor table (virtio 1.2 section 2.7.5, {@code struct virtq_desc}), also the entry
 * format of an indirect table (section 2.7.5.3). All fields little-endian.
 *
 * <pre>
 * byte  0                               8               12      14      16
 *       +-------------------------------+---------------+-------+-------+
 *       | addr (le64, guest-physical)   | len (le32)    | flags | next  |
 *       +-------------------------------+---------------+-------+-------+
 * flags: 1 = NEXT (chain continues at next), 2 = WRITE (device-writable), 4 = INDIRECT
 * </pre>
 */
public final class DescriptorLayout {
    /** Bytes per descriptor. */
    public static final int SIZE = 16;
    public static final int ADDR = 0;
    public static final int LEN = 8;
    public static final int FLAGS = 12;
    public static final int NEXT = 14;

    /** VIRTQ_DESC_F_NEXT: the buffer continues via the next field. */
    public static final int F_NEXT = 1;
    /** VIRTQ_DESC_F_WRITE: the buffer is device write-only (otherwise device read-only). */
    public static final int F_WRITE = 2;
    /** VIRTQ_DESC_F_INDIRECT: the buffer holds a table of descriptors. */
    public static final int F_INDIRECT = 4;

    private DescriptorLayout() {
    }

    /** Bytes of a descriptor table with {@code queueSize} entries. */
    public static long tableBytes(int queueSize) {
        return (long) SIZE * queueSize;
    }
}
