package org.jvhost.spi;

/** Virtio transport feature bits (virtio 1.2, section 6) as masks. */
public final class VirtioFeatures {
    /** VIRTIO_F_NOTIFY_ON_EMPTY (bit 24, legacy). */
    public static final long NOTIFY_ON_EMPTY = 1L << 24;
    /** VIRTIO_F_ANY_LAYOUT (bit 27, legacy). */
    public static final long ANY_LAYOUT = 1L << 27;
    /** VIRTIO_F_RING_INDIRECT_DESC (bit 28): the driver may use indirect descriptor tables. */
    public static final long RING_INDIRECT_DESC = 1L << 28;
    /** VIRTIO_F_RING_EVENT_IDX (bit 29): used_event / avail_event notification suppression. */
    public static final long RING_EVENT_IDX = 1L << 29;
    /** VHOST_USER_F_PROTOCOL_FEATURES (bit 30): gates vhost-user protocol-feature negotiation. */
    public static final long VHOST_USER_PROTOCOL_FEATURES = 1L << 30;
    /** VIRTIO_F_VERSION_1 (bit 32): virtio 1.x, little-endian rings and headers. */
    public static final long VERSION_1 = 1L << 32;
    /** VIRTIO_F_ACCESS_PLATFORM (bit 33). Not offered by jvhost (no IOTLB). */
    public static final long ACCESS_PLATFORM = 1L << 33;
    /** VIRTIO_F_RING_PACKED (bit 34): offered for every device that does not opt out (VhostUserDevice#packedRing). */
    public static final long RING_PACKED = 1L << 34;

    /**
     * VIRTIO_F_IN_ORDER (bit 35): the device uses every buffer in the order the driver made it
     * available. Only a device can promise that, so the host never adds it: a device offers it if it
     * returns each queue's chains in the order it popped them and never {@link Virtqueue#defer defers}
     * one. The host then returns a run of buffers the device wrote nothing into (a transmit queue's) as
     * one used entry carrying the last buffer's id, as virtio 1.2 allows ("In-order use of descriptors" for
     * split rings, 2.7, and packed rings, 2.8), so a
     * driver reads one entry per batch instead of one per buffer.
     *
     * @since SPI 1.6
     */
    public static final long IN_ORDER = 1L << 35;

    /** The transport features the jvhost host implements and adds to every device's offer. */
    public static final long HOST_TRANSPORT = VERSION_1 | RING_INDIRECT_DESC | RING_EVENT_IDX;

    /**
     * The device-specific bits a {@code long} holds (virtio 1.2 section 6): 0-23 and 50-63 (the spec's
     * 50-127 continue past a {@code long}). Bits 24-49 are the transport's.
     *
     * @since SPI 1.4
     */
    public static final long DEVICE_SPECIFIC = 0x00ff_ffffL | (-1L << 50);

    /**
     * Everything {@link VhostUserDevice#features()} may contain: the device-specific bits, the
     * transport bits the host implements (the one set to extend when the host implements another, such
     * as RING_PACKED), and {@link #IN_ORDER} (since SPI 1.6), which only the device can promise. The host
     * refuses a device offering any other bit when it is created.
     *
     * @since SPI 1.4
     */
    public static final long DEVICE_MAY_OFFER = DEVICE_SPECIFIC | HOST_TRANSPORT | VHOST_USER_PROTOCOL_FEATURES
            | IN_ORDER;

    private VirtioFeatures() {
    }

    /** True if every bit of {@code mask} is set in {@code features}. */
    public static boolean has(long features, long mask) {
        return (features & mask) == mask;
    }
}
