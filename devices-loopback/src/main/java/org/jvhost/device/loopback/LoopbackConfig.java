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
    public static final String OPT_MAC = VirtioNet.OPT_MAC;
    public static final String OPT_QUEUES = VirtioNet.OPT_QUEUES;
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
     * The device's {@code struct virtio_net_config}: mac, status = LINK_UP, max_virtqueue_pairs, and
     * mtu = 0 (F_MTU is not offered, so the driver ignores it).
     */
    byte[] configSpace() {
        return VirtioNet.configSpace(mac, queuePairs, 0);
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
        return "mac=" + VirtioNet.formatMac(mac) + ", queues=" + queuePairs + ", mrg_rxbuf=" + (mergeableRxBuffers ? "on" : "off");
    }
}
