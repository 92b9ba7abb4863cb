package org.jvhost.engine.virtq;

/**
 * The driver area, or available ring (virtio 1.2 section 2.7.6, {@code struct virtq_avail}), written by the
 * driver and read by the device. All fields little-endian; the ring needs 2-byte alignment.
 *
 * <pre>
 * byte 0       2       4                              4+2N            6+2N
 *      +-------+-------+-------+-------+-----+--------+---------------+
 *      | flags | idx   |ring[0]|ring[1]| ... |ring[N-1]| used_event   |
 *      +-------+-------+-------+-------+-----+--------+---------------+
 * flags: 1 = VIRTQ_AVAIL_F_NO_INTERRUPT (without EVENT_IDX)
 * ring[i]: head descriptor index; idx: free-running count of entries made available
 * used_event: only with VIRTIO_F_EVENT_IDX
 * </pre>
 */
public final class AvailRingLayout {
    public static final int FLAGS = 0;
    public static final int IDX = 2;
    public static final int RING = 4;
    /** Bytes per ring entry. */
    public static final int ENTRY = 2;

    /** VIRTQ_AVAIL_F_NO_INTERRUPT: the driver does not want used-buffer notifications. */
    public static final int F_NO_INTERRUPT = 1;

    private AvailRingLayout() {
    }

    /** Offset of ring entry {@code slot}. */
    public static int entry(int slot) {
        return RING + ENTRY * slot;
    }

    /** Offset of used_event for a ring of {@code queueSize} entries. */
    public static int usedEvent(int queueSize) {
        return RING + ENTRY * queueSize;
    }

    /** Bytes of the ring including used_event. */
    public static long bytes(int queueSize) {
        return 6L + ENTRY * (long) queueSize;
    }
}
