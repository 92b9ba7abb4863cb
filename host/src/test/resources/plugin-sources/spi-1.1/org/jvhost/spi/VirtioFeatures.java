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
    /** VIRTIO_F_RING_PACKED (bit 34). Not offered by jvhost. */
    public static final long RING_PACKED = 1L << 34;

    /** The transport features the jvhost host implements and adds to every device's offer. */
    public static final long HOST_TRANSPORT = VERSION_1 | RING_INDIRECT_DESC | RING_EVENT_IDX;

    private VirtioFeatures() {
    }

    /** True if every bit of {@code mask} is set in {@code features}. */
    public static boolean has(long features, long mask) {
        return (features & mask) == mask;
    }
}
