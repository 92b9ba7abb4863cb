package org.jvhost.device.net;

import org.jvhost.spi.virtio.VirtioNet;

/**
 * The mapping between virtio-net offload features and the TAP's {@code TUN_F_*} offload flags
 * (linux/if_tun.h).
 *
 * <p>Direction matters. HOST_* features let the driver <em>send</em> partially checksummed and GSO
 * frames; the TAP always accepts those through the virtio-net header (IFF_VNET_HDR), so they need no
 * TAP set-up. GUEST_* features let the device <em>deliver</em> such frames; the TAP only produces them
 * after TUNSETOFFLOAD, so each GUEST_* feature is offered only if the TAP accepts its flag and is
 * switched on only once the driver acknowledged it (otherwise the kernel finishes checksums and
 * segments before the frame reaches us).
 */
final class TunOffloads {
    static final int TUN_F_CSUM = 0x01;
    static final int TUN_F_TSO4 = 0x02;
    static final int TUN_F_TSO6 = 0x04;
    static final int TUN_F_TSO_ECN = 0x08;
    static final int TUN_F_UFO = 0x10;

    /** Offloads the device may offer whatever the TAP supports: the driver-to-TAP direction. */
    static final long HOST_FEATURES = VirtioNet.F_CSUM | VirtioNet.F_HOST_TSO4 | VirtioNet.F_HOST_TSO6
            | VirtioNet.F_HOST_ECN | VirtioNet.F_HOST_UFO;

    private TunOffloads() {
    }

    /**
     * The GUEST_* features a TAP with {@code supportedTunFlags} can serve. The dependencies of virtio 1.2
     * 5.1.3.1 are kept: TSO and UFO need GUEST_CSUM, ECN needs TSO.
     */
    static long guestFeatures(int supportedTunFlags) {
        if ((supportedTunFlags & TUN_F_CSUM) == 0) {
            return 0;
        }
        long features = VirtioNet.F_GUEST_CSUM;
        if ((supportedTunFlags & TUN_F_TSO4) != 0) {
            features |= VirtioNet.F_GUEST_TSO4;
        }
        if ((supportedTunFlags & TUN_F_TSO6) != 0) {
            features |= VirtioNet.F_GUEST_TSO6;
        }
        if ((supportedTunFlags & TUN_F_TSO_ECN) != 0 && (features & (VirtioNet.F_GUEST_TSO4 | VirtioNet.F_GUEST_TSO6)) != 0) {
            features |= VirtioNet.F_GUEST_ECN;
        }
        if ((supportedTunFlags & TUN_F_UFO) != 0) {
            features |= VirtioNet.F_GUEST_UFO;
        }
        return features;
    }

    /**
     * The TUNSETOFFLOAD flags for the features the driver acknowledged. The kernel rejects TSO flags
     * without TUN_F_CSUM and ECN without a TSO flag (EINVAL, drivers/net/tun.c set_offload), and the spec
     * forbids a driver to ack them so (5.1.3.1); a driver that does anyway gets no offload it depends on.
     */
    static int tunFlags(long acked) {
        if ((acked & VirtioNet.F_GUEST_CSUM) == 0) {
            return 0;
        }
        int flags = TUN_F_CSUM;
        if ((acked & VirtioNet.F_GUEST_TSO4) != 0) {
            flags |= TUN_F_TSO4;
        }
        if ((acked & VirtioNet.F_GUEST_TSO6) != 0) {
            flags |= TUN_F_TSO6;
        }
        if ((acked & VirtioNet.F_GUEST_ECN) != 0 && (flags & (TUN_F_TSO4 | TUN_F_TSO6)) != 0) {
            flags |= TUN_F_TSO_ECN;
        }
        if ((acked & VirtioNet.F_GUEST_UFO) != 0) {
            flags |= TUN_F_UFO;
        }
        return flags;
    }

    /** The flag combinations to probe, each one the kernel accepts as a whole or rejects. */
    static final int[] PROBES = {
        TUN_F_CSUM, TUN_F_CSUM | TUN_F_TSO4, TUN_F_CSUM | TUN_F_TSO6,
        TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO_ECN, TUN_F_CSUM | TUN_F_UFO,
    };
}
