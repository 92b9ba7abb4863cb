package org.jvhost.engine.virtq;

/**
 * A packed virtqueue's event suppression structure (virtio 1.2 section 2.8.14, {@code struct
 * pvirtq_event_suppress}): the driver area is one, written by the driver to suppress the device's used
 * buffer notifications; the device area is another, written by the device to suppress the driver's
 * kicks. Little-endian, 4-byte aligned.
 *
 * <pre>
 * byte 0                        2                 4
 *      +------------------------+-----------------+
 *      | off_wrap (le16)        | flags (le16)    |
 *      +------------------------+-----------------+
 * off_wrap: bits 0-14 a descriptor ring offset, bit 15 the wrap counter it belongs to (DESC only)
 * flags:    0 = ENABLE, 1 = DISABLE, 2 = DESC (notify when the ring passes off_wrap; EVENT_IDX only)
 * </pre>
 *
 * The device writes both fields with one 32-bit store ({@link #word}), so the driver, which reads them
 * as one 32-bit snapshot (Linux's virtqueue_kick_prepare_packed), never sees a DESC flag with a stale
 * offset.
 */
public final class EventSuppressLayout {
    /** Bytes of the structure. */
    public static final int SIZE = 4;
    public static final int OFF_WRAP = 0;
    public static final int FLAGS = 2;

    /** RING_EVENT_FLAGS_ENABLE: notifications wanted. */
    public static final int ENABLE = 0;
    /** RING_EVENT_FLAGS_DISABLE: no notifications. */
    public static final int DISABLE = 1;
    /** RING_EVENT_FLAGS_DESC: a notification when the ring passes off_wrap. */
    public static final int DESC = 2;

    /** Bit 15 of off_wrap: the wrap counter. */
    public static final int WRAP = 1 << 15;

    private EventSuppressLayout() {
    }

    /** The 32-bit little-endian value of the whole structure. */
    public static int word(int offWrap, int flags) {
        return (offWrap & 0xffff) | (flags << 16);
    }
}
