package org.jvhost.spi.virtio;

/**
 * virtio-net constants (virtio 1.2, section 5.1) shared by network devices.
 *
 * <h2>Header ({@code struct virtio_net_hdr}, 12 bytes with VERSION_1 or MRG_RXBUF)</h2>
 * <pre>
 *  0       1       2               4               6               8              10              12
 *  +-------+-------+---------------+---------------+---------------+---------------+---------------+
 *  | flags |gso_typ|   hdr_len     |   gso_size    |  csum_start   |  csum_offset  |  num_buffers  |
 *  +-------+-------+---------------+---------------+---------------+---------------+---------------+
 * </pre>
 *
 * <h2>Config space ({@code struct virtio_net_config})</h2>
 * <pre>
 *  0                       6               8               10              12
 *  +-----------------------+---------------+---------------+---------------+
 *  |         mac           |    status     | max_vq_pairs  |      mtu      |
 *  +-----------------------+---------------+---------------+---------------+
 * </pre>
 */
public final class VirtioNet {
    /** Virtio device id of a network card. */
    public static final int DEVICE_ID = 1;

    public static final long F_CSUM = 1L << 0;
    public static final long F_GUEST_CSUM = 1L << 1;
    public static final long F_CTRL_GUEST_OFFLOADS = 1L << 2;
    public static final long F_MTU = 1L << 3;
    public static final long F_MAC = 1L << 5;
    public static final long F_GUEST_TSO4 = 1L << 7;
    public static final long F_GUEST_TSO6 = 1L << 8;
    public static final long F_GUEST_ECN = 1L << 9;
    public static final long F_GUEST_UFO = 1L << 10;
    public static final long F_HOST_TSO4 = 1L << 11;
    public static final long F_HOST_TSO6 = 1L << 12;
    public static final long F_HOST_ECN = 1L << 13;
    public static final long F_HOST_UFO = 1L << 14;
    public static final long F_MRG_RXBUF = 1L << 15;
    public static final long F_STATUS = 1L << 16;
    public static final long F_CTRL_VQ = 1L << 17;
    public static final long F_CTRL_RX = 1L << 18;
    public static final long F_CTRL_VLAN = 1L << 19;
    public static final long F_GUEST_ANNOUNCE = 1L << 21;
    public static final long F_MQ = 1L << 22;
    public static final long F_CTRL_MAC_ADDR = 1L << 23;

    /** Header length with VERSION_1 or MRG_RXBUF. */
    public static final int HDR_LEN = 12;
    /** Header length of a legacy device without MRG_RXBUF. */
    public static final int HDR_LEN_LEGACY = 10;
    public static final int HDR_FLAGS = 0;
    public static final int HDR_GSO_TYPE = 1;
    public static final int HDR_NUM_BUFFERS = 10;

    public static final int CONFIG_MAC = 0;
    public static final int CONFIG_STATUS = 6;
    public static final int CONFIG_MAX_VQ_PAIRS = 8;
    public static final int CONFIG_MTU = 10;
    /** Config space length up to and including {@code mtu}. */
    public static final int CONFIG_SIZE = 12;

    /** VIRTIO_NET_S_LINK_UP. */
    public static final int S_LINK_UP = 1;

    /** The largest number of queue pairs the virtio spec allows. */
    public static final int MAX_VQ_PAIRS = 0x8000;

    private VirtioNet() {
    }

    /** Header length for the negotiated features. */
    public static int headerLength(long ackedFeatures) {
        boolean v1 = (ackedFeatures & org.jvhost.spi.VirtioFeatures.VERSION_1) != 0;
        return v1 || (ackedFeatures & F_MRG_RXBUF) != 0 ? HDR_LEN : HDR_LEN_LEGACY;
    }

    /** True if {@code queueIndex} is a receive queue (even indices below the control queue). */
    public static boolean isRxQueue(int queueIndex) {
        return (queueIndex & 1) == 0;
    }
}
