package org.jvhost.engine.virtq;

/**
 * The device area, or used ring (virtio 1.2 section 2.7.8, {@code struct virtq_used}), written by the device
 * and read by the driver. All fields little-endian; the ring needs 4-byte alignment.
 *
 * <pre>
 * byte 0       2       4                  12                 4+8N          6+8N
 *      +-------+-------+---------+--------+-----+------------+-------------+
 *      | flags | idx   | id[0]   | len[0] | ... | elem[N-1]  | avail_event |
 *      +-------+-------+---------+--------+-----+------------+-------------+
 * flags: 1 = VIRTQ_USED_F_NO_NOTIFY (without EVENT_IDX)
 * elem:  id (le32) = head of the returned chain, len (le32) = bytes written into it
 * idx:   free-running count of entries returned
 * avail_event: only with VIRTIO_F_EVENT_IDX
 * </pre>
 */
public final class UsedRingLayout {
    public static final int FLAGS = 0;
    public static final int IDX = 2;
    public static final int RING = 4;
    /** Bytes per used element. */
    public static final int ELEM = 8;
    public static final int ELEM_ID = 0;
    public static final int ELEM_LEN = 4;

    /** VIRTQ_USED_F_NO_NOTIFY: the device does not want available-buffer notifications (kicks). */
    public static final int F_NO_NOTIFY = 1;

    private UsedRingLayout() {
    }

    /** Offset of used element {@code slot}. */
    public static int elem(int slot) {
        return RING + ELEM * slot;
    }

    /** Offset of avail_event for a ring of {@code queueSize} entries. */
    public static int availEvent(int queueSize) {
        return RING + ELEM * queueSize;
    }

    /** Bytes of the ring including avail_event. */
    public static long bytes(int queueSize) {
        return 6L + ELEM * (long) queueSize;
    }
}
