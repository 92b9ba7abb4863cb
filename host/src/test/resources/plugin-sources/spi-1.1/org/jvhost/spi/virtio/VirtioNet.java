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
 *
 * <h2>Control queue command ({@code struct virtio_net_ctrl}, 5.1.6.5)</h2>
 * <pre>
 *  device-readable                                      device-writable
 *  +-------+---------+-------------------------------+   +-------+
 *  | class | command | command-specific-data ...     |   |  ack  |
 *  +-------+---------+-------------------------------+   +-------+
 * </pre>
 * The control queue is the last queue: index {@code 2N}, where N is max_virtqueue_pairs if
 * VIRTIO_NET_F_MQ was negotiated and 1 otherwise (5.1.2); see {@link #controlQueueIndex}.
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

    /** Option keys the virtio-net device types share, so users write them alike for every type. */
    public static final String OPT_MAC = "mac";
    public static final String OPT_QUEUES = "queues";

    /** Control classes and commands (5.1.6.5) and the ack values. */
    public static final int CTRL_MQ = 4;
    public static final int CTRL_MQ_VQ_PAIRS_SET = 0;
    public static final int CTRL_GUEST_OFFLOADS = 5;
    public static final int CTRL_GUEST_OFFLOADS_SET = 0;
    public static final byte CTRL_OK = 0;
    public static final byte CTRL_ERR = 1;
    /** Bytes of class and command in front of a control command's data. */
    public static final int CTRL_HDR_LEN = 2;
    /** The features VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET may switch (its bit mask uses feature bit numbers). */
    public static final long GUEST_OFFLOADS = F_GUEST_CSUM | F_GUEST_TSO4 | F_GUEST_TSO6 | F_GUEST_ECN | F_GUEST_UFO;

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

    /**
     * The control queue's index for the negotiated features: {@code 2 * maxPairs} with VIRTIO_NET_F_MQ,
     * else 2 (virtio 1.2 5.1.2), or -1 without VIRTIO_NET_F_CTRL_VQ.
     */
    public static int controlQueueIndex(long ackedFeatures, int maxPairs) {
        if ((ackedFeatures & F_CTRL_VQ) == 0) {
            return -1;
        }
        return (ackedFeatures & F_MQ) != 0 ? 2 * maxPairs : 2;
    }

    /**
     * A {@code struct virtio_net_config}: mac (zeros if null), status = LINK_UP, max_virtqueue_pairs, mtu
     * (0 if none). Fields whose feature is not offered are still laid out, because the layout is fixed and
     * a front-end may read the whole structure; the driver ignores them (5.1.4: mtu "only exists if
     * VIRTIO_NET_F_MTU is set").
     */
    public static byte[] configSpace(byte[] mac, int maxPairs, int mtu) {
        if (mac != null && mac.length != 6) {
            throw new IllegalArgumentException("mac must be 6 bytes, got " + mac.length);
        }
        if (maxPairs < 1 || maxPairs > MAX_VQ_PAIRS || mtu < 0 || mtu > 0xffff) {
            throw new IllegalArgumentException("max_virtqueue_pairs " + maxPairs + " or mtu " + mtu + " out of range");
        }
        byte[] config = new byte[CONFIG_SIZE];
        if (mac != null) {
            System.arraycopy(mac, 0, config, CONFIG_MAC, 6);
        }
        putLe16(config, CONFIG_STATUS, S_LINK_UP);
        putLe16(config, CONFIG_MAX_VQ_PAIRS, maxPairs);
        putLe16(config, CONFIG_MTU, mtu);
        return config;
    }

    /** {@code 52:54:00:12:34:56}: lower-case hex, as {@link org.jvhost.spi.DeviceOptions#getMac} reads it. */
    public static String formatMac(byte[] mac) {
        StringBuilder s = new StringBuilder(17);
        for (int i = 0; i < mac.length; i++) {
            if (i > 0) {
                s.append(':');
            }
            s.append(Character.forDigit((mac[i] >> 4) & 0xf, 16)).append(Character.forDigit(mac[i] & 0xf, 16));
        }
        return s.toString();
    }

    private static void putLe16(byte[] b, int offset, int value) {
        b[offset] = (byte) value;
        b[offset + 1] = (byte) (value >>> 8);
    }

    /** True if {@code queueIndex} is a receive queue (even indices below the control queue). */
    public static boolean isRxQueue(int queueIndex) {
        return (queueIndex & 1) == 0;
    }
}
