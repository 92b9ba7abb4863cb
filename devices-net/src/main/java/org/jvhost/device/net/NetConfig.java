package org.jvhost.device.net;

import java.util.Arrays;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.InvalidOptionException;
import org.jvhost.spi.virtio.VirtioNet;

/**
 * The validated settings of one net device.
 *
 * @param tapName    the TAP to open or create, or null when {@code tapFds} is given
 * @param tapFds     inherited TAP file descriptors, one per queue pair, or null when {@code tapName} is given
 * @param mac        the MAC for config space (6 bytes, unicast), or null to leave the address to the front-end
 * @param mtu        the MTU for config space, or 0 to not offer VIRTIO_NET_F_MTU
 * @param queuePairs RX/TX queue pairs, 1..{@link #MAX_QUEUE_PAIRS}
 * @param uring      whether TX batches its TAP writes through io_uring
 */
public record NetConfig(String tapName, int[] tapFds, byte[] mac, int mtu, int queuePairs, Uring uring) {

    /** {@code uring=}: how TX frames reach the TAP. */
    public enum Uring {
        /** io_uring when the kernel allows it (one system call per batch), else one writev per frame. */
        AUTO,
        /** io_uring or refuse to start: for operators who want to know the fast path is in use. */
        ON,
        /** one writev per frame. */
        OFF
    }

    public static final String OPT_TAP = "tap";
    public static final String OPT_TAPFD = "tapfd";
    public static final String OPT_MAC = VirtioNet.OPT_MAC;
    public static final String OPT_MTU = "mtu";
    public static final String OPT_QUEUES = VirtioNet.OPT_QUEUES;
    public static final String OPT_URING = "uring";

    /** One TAP queue and one worker group per pair; 8 is more than the 2-core machines jvhost targets need. */
    public static final int MAX_QUEUE_PAIRS = 8;
    /** The smallest MTU an IPv4 host must accept (RFC 791) and the largest a 16-bit field holds. */
    public static final int MIN_MTU = 68;
    public static final int MAX_MTU = 65535;
    /** IFNAMSIZ minus the terminating NUL. */
    static final int MAX_TAP_NAME = 15;

    public NetConfig {
        if ((tapName == null) == (tapFds == null)) {
            throw new IllegalArgumentException("exactly one of tapName and tapFds must be given");
        }
        if (queuePairs < 1 || queuePairs > MAX_QUEUE_PAIRS) {
            throw new IllegalArgumentException("queuePairs must be 1.." + MAX_QUEUE_PAIRS + ", got " + queuePairs);
        }
        if (tapFds != null && tapFds.length != queuePairs) {
            throw new IllegalArgumentException(tapFds.length + " TAP fds for " + queuePairs + " queue pairs");
        }
        if (mac != null && mac.length != 6) {
            throw new IllegalArgumentException("mac must be 6 bytes, got " + mac.length);
        }
        if (mtu != 0 && (mtu < MIN_MTU || mtu > MAX_MTU)) {
            throw new IllegalArgumentException("mtu must be 0 or " + MIN_MTU + ".." + MAX_MTU + ", got " + mtu);
        }
        if (uring == null) {
            throw new IllegalArgumentException("uring must be given");
        }
        tapFds = tapFds == null ? null : tapFds.clone();
        mac = mac == null ? null : mac.clone();
    }

    /** Reads the options; a bad value becomes an {@link InvalidOptionException} naming its key. */
    public static NetConfig from(DeviceOptions options) throws InvalidOptionException {
        int queues = options.getInt(OPT_QUEUES, 1, MAX_QUEUE_PAIRS);
        String tap = options.get(OPT_TAP).map(String::trim).orElse(null);
        String tapfd = options.get(OPT_TAPFD).map(String::trim).orElse(null);
        if (tap != null && tapfd != null) {
            throw new InvalidOptionException(OPT_TAPFD, "tap=" + tap + " and tapfd=" + tapfd
                    + " exclude each other: give the TAP by name or as inherited fds");
        }
        if (tap == null && tapfd == null) {
            throw new InvalidOptionException(OPT_TAP, "the net device needs tap=NAME (a TAP to open or create) or "
                    + "tapfd=N[:N...] (inherited TAP fds, one per queue pair)");
        }
        byte[] mac = options.get(OPT_MAC).isPresent() ? options.getMac(OPT_MAC) : null;
        int mtu = options.get(OPT_MTU).isPresent() ? options.getInt(OPT_MTU, MIN_MTU, MAX_MTU) : 0;
        return new NetConfig(tap == null ? null : checkTapName(tap),
                tapfd == null ? null : parseFds(tapfd, queues), mac, mtu, queues, parseUring(options));
    }

    private static Uring parseUring(DeviceOptions options) throws InvalidOptionException {
        String value = options.get(OPT_URING).map(String::trim).orElse("auto");
        switch (value) {
            case "auto": return Uring.AUTO;
            case "on": return Uring.ON;
            case "off": return Uring.OFF;
            default:
                throw new InvalidOptionException(OPT_URING, "uring=" + value + ": expected auto, on or off");
        }
    }

    /** The kernel's rule for interface names (net/core/dev.c, dev_valid_name). */
    static String checkTapName(String name) throws InvalidOptionException {
        if (name.isEmpty() || name.length() > MAX_TAP_NAME || name.equals(".") || name.equals("..")) {
            throw new InvalidOptionException(OPT_TAP, "tap=" + name + ": an interface name has 1.."
                    + MAX_TAP_NAME + " characters and is not . or ..");
        }
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            if (c == '/' || c == ':' || Character.isWhitespace(c) || c < 0x21 || c > 0x7e) {
                throw new InvalidOptionException(OPT_TAP, "tap=" + name + ": '" + c
                        + "' is not allowed in an interface name (printable ASCII without '/', ':' or spaces)");
            }
        }
        return name;
    }

    /** {@code 5} or {@code 5:6:7}: one fd per queue pair, in pair order. */
    static int[] parseFds(String value, int queues) throws InvalidOptionException {
        String[] parts = value.split(":", -1);
        if (parts.length != queues) {
            throw new InvalidOptionException(OPT_TAPFD, "tapfd=" + value + " gives " + parts.length
                    + (parts.length == 1 ? " fd" : " fds") + " but queues=" + queues + " needs one per queue pair");
        }
        int[] fds = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                fds[i] = Integer.parseInt(parts[i]);
            } catch (NumberFormatException e) {
                fds[i] = -1;
            }
            if (fds[i] < 0) {
                throw new InvalidOptionException(OPT_TAPFD, "tapfd=" + value + ": '" + parts[i]
                        + "' is not a file descriptor number");
            }
            for (int j = 0; j < i; j++) {
                if (fds[j] == fds[i]) {
                    throw new InvalidOptionException(OPT_TAPFD, "tapfd=" + value + ": fd " + fds[i] + " given twice");
                }
            }
        }
        return fds;
    }

    @Override
    public int[] tapFds() {
        return tapFds == null ? null : tapFds.clone();
    }

    @Override
    public byte[] mac() {
        return mac == null ? null : mac.clone();
    }

    /** {@code struct virtio_net_config}: mac (zero if none), status = LINK_UP, max_virtqueue_pairs, mtu (zero if none). */
    byte[] configSpace() {
        return VirtioNet.configSpace(mac, queuePairs, mtu);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof NetConfig c && java.util.Objects.equals(tapName, c.tapName)
                && Arrays.equals(tapFds, c.tapFds) && Arrays.equals(mac, c.mac) && mtu == c.mtu
                && queuePairs == c.queuePairs && uring == c.uring;
    }

    @Override
    public int hashCode() {
        return java.util.Objects.hash(tapName, Arrays.hashCode(tapFds), Arrays.hashCode(mac), mtu, queuePairs, uring);
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder(tapName != null ? "tap=" + tapName : "tapfd=" + joinFds());
        if (mac != null) {
            s.append(", mac=").append(VirtioNet.formatMac(mac));
        }
        if (mtu != 0) {
            s.append(", mtu=").append(mtu);
        }
        s.append(", queues=").append(queuePairs);
        return uring == Uring.AUTO ? s.toString() : s.append(", uring=").append(uring.name().toLowerCase()).toString();
    }

    private String joinFds() {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < tapFds.length; i++) {
            s.append(i == 0 ? "" : ":").append(tapFds[i]);
        }
        return s.toString();
    }
}
