package org.jvhost.engine.instrument;

import java.util.ArrayList;
import java.util.List;

/**
 * Feature bits by their spec names, for the trace: virtio transport bits (virtio 1.2 §6 "Reserved
 * Feature Bits"), virtio-net device bits (§5.1.3) for a net device, and vhost-user protocol feature bits
 * (vhost-user "Protocol features"). A bit without a name is written {@code bitN}.
 */
public final class FeatureNames {
    /** virtio device id of a network card (virtio 1.2 §5 "Device Types"). */
    static final int NET_DEVICE = 1;

    private static final String[] TRANSPORT = new String[64];
    private static final String[] NET = new String[24];
    private static final String[] PROTOCOL = {
        "MQ", "LOG_SHMFD", "RARP", "REPLY_ACK", "NET_MTU", "BACKEND_REQ", "CROSS_ENDIAN", "CRYPTO_SESSION",
        "PAGEFAULT", "CONFIG", "BACKEND_SEND_FD", "HOST_NOTIFIER", "INFLIGHT_SHMFD", "RESET_DEVICE",
        "INBAND_NOTIFICATIONS", "CONFIGURE_MEM_SLOTS", "STATUS", "XEN_MMAP", "SHARED_OBJECT", "DEVICE_STATE",
    };

    static {
        TRANSPORT[24] = "NOTIFY_ON_EMPTY";
        TRANSPORT[26] = "LOG_ALL"; // VHOST_F_LOG_ALL (vhost-user "Migration"), in virtio's reserved range
        TRANSPORT[27] = "ANY_LAYOUT";
        TRANSPORT[28] = "RING_INDIRECT_DESC";
        TRANSPORT[29] = "RING_EVENT_IDX";
        TRANSPORT[30] = "VHOST_USER_PROTOCOL_FEATURES";
        TRANSPORT[32] = "VERSION_1";
        TRANSPORT[33] = "ACCESS_PLATFORM";
        TRANSPORT[34] = "RING_PACKED";
        TRANSPORT[35] = "IN_ORDER";
        TRANSPORT[36] = "ORDER_PLATFORM";
        TRANSPORT[37] = "SR_IOV";
        TRANSPORT[38] = "NOTIFICATION_DATA";
        TRANSPORT[39] = "NOTIF_CONFIG_DATA";
        TRANSPORT[40] = "RING_RESET";
        String[] net = {"CSUM", "GUEST_CSUM", "CTRL_GUEST_OFFLOADS", "MTU", null, "MAC", null, "GUEST_TSO4",
            "GUEST_TSO6", "GUEST_ECN", "GUEST_UFO", "HOST_TSO4", "HOST_TSO6", "HOST_ECN", "HOST_UFO", "MRG_RXBUF",
            "STATUS", "CTRL_VQ", "CTRL_RX", "CTRL_VLAN", "CTRL_RX_EXTRA", "GUEST_ANNOUNCE", "MQ", "CTRL_MAC_ADDR"};
        for (int i = 0; i < net.length; i++) {
            NET[i] = net[i] == null ? null : "NET_F_" + net[i];
        }
    }

    private FeatureNames() {
    }

    /** The names of the virtio feature bits set in {@code features} of a device of type {@code deviceType}. */
    public static List<String> virtio(long features, int deviceType) {
        List<String> names = new ArrayList<>();
        for (int bit = 0; bit < 64; bit++) {
            if ((features & (1L << bit)) != 0) {
                String name = bit < NET.length && deviceType == NET_DEVICE ? NET[bit] : TRANSPORT[bit];
                names.add(name != null ? name : "bit" + bit);
            }
        }
        return names;
    }

    /** The names of the vhost-user protocol feature bits set in {@code features}. */
    static List<String> protocol(long features) {
        List<String> names = new ArrayList<>();
        for (int bit = 0; bit < 64; bit++) {
            if ((features & (1L << bit)) != 0) {
                names.add(bit < PROTOCOL.length ? PROTOCOL[bit] : "bit" + bit);
            }
        }
        return names;
    }
}
