package org.jvhost.device.loopback;

import java.util.Arrays;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.InvalidOptionException;
import org.jvhost.spi.virtio.VirtioNet;

/**
 * The validated settings of one loopback device.
 *
 * @param mac               the MAC the device reports in config space (6 bytes, unicast)
 * @param queuePairs        RX/TX queue pairs, 1..{@link #MAX_QUEUE_PAIRS}
 * @param mergeableRxBuffers whether VIRTIO_NET_F_MRG_RXBUF is offered
 */
public record LoopbackConfig(byte[] mac, int queuePairs, boolean mergeableRxBuffers) {

    /** The option keys. */
    public static final String OPT_MAC = "mac";
    public static final String OPT_QUEUES = "queues";
    public static final String OPT_MRG_RXBUF = "mrg_rxbuf";

    /** A locally administered unicast address (bit 1 of the first byte set, bit 0 clear). */
    public static final String DEFAULT_MAC = "02:00:00:00:00:01";

    /**
     * More pairs than CPUs buys nothing for a device that only copies; 8 keeps the RX chain pools and
     * worker groups small while still letting a multi-queue guest (QEMU {@code queues=N,mq=on}) be tested.
     */
    public static final int MAX_QUEUE_PAIRS = 8;

    public LoopbackConfig {
        if (mac.length != 6) {
            throw new IllegalArgumentException("mac must be 6 bytes, got " + mac.length);
        }
        if (queuePairs < 1 || queuePairs > MAX_QUEUE_PAIRS) {
            throw new IllegalArgumentException("queuePairs must be 1.." + MAX_QUEUE_PAIRS + ", got " + queuePairs);
        }
        mac = mac.clone();
    }

    /** Reads the options; a bad value becomes an {@link InvalidOptionException} naming its key. */
    public static LoopbackConfig from(DeviceOptions options) throws InvalidOptionException {
        return new LoopbackConfig(
                options.getMac(OPT_MAC),
                options.getInt(OPT_QUEUES, 1, MAX_QUEUE_PAIRS),
                options.getBoolean(OPT_MRG_RXBUF));
    }

    @Override
    public byte[] mac() {
        return mac.clone();
    }

    /**
     * The device's {@code struct virtio_net_config} (see {@link VirtioNet}): mac, status = LINK_UP,
     * max_virtqueue_pairs, and mtu = 0. F_MTU is not offered, so the driver ignores mtu (virtio 1.2
     * 5.1.4: the field "only exists if VIRTIO_NET_F_MTU is set"); the bytes are still there because the
     * layout is fixed and a front-end may read the whole structure.
     */
    byte[] configSpace() {
        byte[] config = new byte[VirtioNet.CONFIG_SIZE];
        System.arraycopy(mac, 0, config, VirtioNet.CONFIG_MAC, 6);
        putLe16(config, VirtioNet.CONFIG_STATUS, VirtioNet.S_LINK_UP);
        putLe16(config, VirtioNet.CONFIG_MAX_VQ_PAIRS, queuePairs);
        return config;
    }

    private static void putLe16(byte[] b, int offset, int value) {
        b[offset] = (byte) value;
        b[offset + 1] = (byte) (value >>> 8);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof LoopbackConfig c && Arrays.equals(mac, c.mac)
                && queuePairs == c.queuePairs && mergeableRxBuffers == c.mergeableRxBuffers;
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(mac) * 31 + queuePairs * 2 + (mergeableRxBuffers ? 1 : 0);
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < 6; i++) {
            s.append(i == 0 ? "" : ":").append(String.format("%02x", mac[i] & 0xff));
        }
        return "mac=" + s + ", queues=" + queuePairs + ", mrg_rxbuf=" + (mergeableRxBuffers ? "on" : "off");
    }
}
