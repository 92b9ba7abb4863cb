package org.jvhost.device.net;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.Map;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.Virtqueue;
import org.jvhost.spi.virtio.VirtioNet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The SPI glue of the net device: features, config space, queue hand-over. Queue {@code 2n} is RX and
 * {@code 2n+1} is TX of pair {@code n} (virtio 1.2 5.1.2), served by TAP queue {@code n}; both queues
 * of a pair and the TAP queue's readiness share one queue group, so the pair's data path runs on one
 * worker without locks.
 *
 * <p>There is no control queue: QEMU and DPDK's virtio_user keep it in the front-end for vhost-user
 * back-ends and enable queue pairs with SET_VRING_ENABLE, so CTRL_VQ is not offered and MQ is offered
 * without it, as DPDK's net_vhost does (see the loopback device).
 */
public final class NetDevice implements VhostUserDevice, AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(NetDevice.class);

    private final String name;
    private final NetConfig config;
    private final Tap tap;
    private final byte[] configSpace;
    private final long features;
    private final PairDataPath[] pairs;
    /** Written on the control thread before queues start; the host's queue hand-over orders it. */
    private volatile long ackedFeatures;

    NetDevice(String name, NetConfig config, Tap tap, DeviceContext context) {
        this.name = name;
        this.config = config;
        this.tap = tap;
        this.configSpace = config.configSpace();
        this.features = offer(config, tap.supportedOffloads());
        this.pairs = new PairDataPath[config.queuePairs()];
        for (int i = 0; i < pairs.length; i++) {
            pairs[i] = new PairDataPath(name, tap, i, context, queueGroup(2 * i), config.mtu());
        }
        detachIdleQueues();
    }

    /**
     * STATUS (link up in config space), MRG_RXBUF, the HOST_* offloads (the TAP takes any header the
     * driver sends), the GUEST_* offloads the TAP accepted when probed, MAC and MTU when configured, MQ
     * with more than one pair.
     */
    static long offer(NetConfig config, int tapOffloads) {
        long f = VirtioNet.F_STATUS | VirtioNet.F_MRG_RXBUF | TunOffloads.HOST_FEATURES
                | TunOffloads.guestFeatures(tapOffloads);
        if (config.mac() != null) {
            f |= VirtioNet.F_MAC;
        }
        if (config.mtu() != 0) {
            f |= VirtioNet.F_MTU;
        }
        if (config.queuePairs() > 1) {
            f |= VirtioNet.F_MQ;
        }
        return f;
    }

    /** Until the driver enables a pair, the kernel must not steer frames to its TAP queue. */
    private void detachIdleQueues() {
        for (int i = 1; i < pairs.length; i++) {
            setAttached(i, false);
        }
    }

    @Override
    public int deviceType() {
        return VirtioNet.DEVICE_ID;
    }

    @Override
    public int maxQueues() {
        return 2 * pairs.length;
    }

    @Override
    public long features() {
        return features;
    }

    /**
     * Sets the TAP's header length for the negotiated header (5.1.6: 12 bytes with VERSION_1 or
     * MRG_RXBUF) and switches on exactly the receive offloads the driver acknowledged.
     */
    @Override
    public void ackFeatures(long acked) {
        ackedFeatures = acked;
        try {
            tap.setHeaderLength(VirtioNet.headerLength(acked));
        } catch (IOException e) {
            throw new UncheckedIOException(name + ": " + e.getMessage(), e);
        }
        int offloads = TunOffloads.tunFlags(acked & features);
        try {
            tap.setOffloads(offloads);
        } catch (IOException e) {
            // frames then arrive fully checksummed and segmented, which every driver accepts
            LOG.warn("{}: {}; receive offloads stay off", name, e.getMessage());
        }
        LOG.debug("{}: features 0x{} acknowledged, TAP offloads 0x{}", name, Long.toHexString(acked),
                Integer.toHexString(offloads));
    }

    @Override
    public int configSize() {
        return configSpace.length;
    }

    @Override
    public void readConfig(int offset, byte[] dst) {
        System.arraycopy(configSpace, offset, dst, 0, dst.length);
    }

    /** RX n, TX n and TAP queue n share group n. */
    @Override
    public int queueGroup(int queueIndex) {
        return queueIndex / 2;
    }

    @Override
    public void startQueue(int queueIndex, Virtqueue queue) {
        PairDataPath pair = pair(queueIndex);
        pair.setFeatures(ackedFeatures);
        if (VirtioNet.isRxQueue(queueIndex)) {
            setAttached(queueIndex / 2, true);
            pair.attachRx(queue);
        } else {
            pair.attachTx(queue);
        }
        LOG.debug("{}: queue {} started (size {})", name, queueIndex, queue.size());
    }

    @Override
    public void handleKick(int queueIndex) {
        PairDataPath pair = pair(queueIndex);
        if (VirtioNet.isRxQueue(queueIndex)) {
            pair.rxKick();
        } else {
            pair.drainTx();
        }
    }

    @Override
    public Virtqueue stopQueue(int queueIndex) {
        PairDataPath pair = pair(queueIndex);
        Virtqueue queue;
        if (VirtioNet.isRxQueue(queueIndex)) {
            queue = pair.detachRx();
            if (queueIndex > 0) {
                setAttached(queueIndex / 2, false);
            }
        } else {
            queue = pair.detachTx();
        }
        LOG.debug("{}: queue {} stopped", name, queueIndex);
        return queue;
    }

    private void setAttached(int tapQueue, boolean attached) {
        try {
            tap.setQueueAttached(tapQueue, attached);
        } catch (IOException e) {
            LOG.warn("{}: {}", name, e.getMessage());
        }
    }

    /** Queues are all stopped already; the negotiated features go and the TAP's receive offloads with them. */
    @Override
    public void reset() {
        ackedFeatures = 0;
        try {
            tap.setOffloads(0);
        } catch (IOException e) {
            LOG.warn("{}: {}", name, e.getMessage());
        }
    }

    /** Sums over all pairs; see {@link PairDataPath#COUNTER_NAMES} for what each counts. */
    @Override
    public Map<String, Long> counters() {
        Map<String, Long> sums = new LinkedHashMap<>();
        for (int slot = 0; slot < PairDataPath.COUNTER_NAMES.length; slot++) {
            long sum = 0;
            for (PairDataPath pair : pairs) {
                sum += pair.counter(slot);
            }
            sums.put(PairDataPath.COUNTER_NAMES[slot], sum);
        }
        return sums;
    }

    /** Closes the TAP (a TAP jvhost created disappears). Call only with every queue stopped. */
    @Override
    public void close() {
        tap.close();
    }

    private PairDataPath pair(int queueIndex) {
        if (queueIndex < 0 || queueIndex >= maxQueues()) {
            throw new IllegalArgumentException(name + ": queue index " + queueIndex
                    + " out of range, the device has " + maxQueues() + " queues");
        }
        return pairs[queueIndex / 2];
    }

    @Override
    public String toString() {
        return name + " (net, " + config + ", " + tap + ")";
    }
}
