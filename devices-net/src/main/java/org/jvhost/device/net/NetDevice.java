package org.jvhost.device.net;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.Map;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.DeviceState;
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
 * <h2>Control queue and queue pairs</h2>
 * VIRTIO_NET_F_CTRL_VQ is offered and the control queue, the last one (index {@link
 * VirtioNet#controlQueueIndex}), is served by {@link ControlQueue} in a group of its own. Who uses it
 * depends on the front-end: QEMU and DPDK's virtio_user keep the control queue in their own device model
 * and enable queue pairs with SET_VRING_ENABLE (QEMU 7.2 neither acks CTRL_VQ to a vhost-user back-end nor
 * hands it the queue: its vhost-user net clients are all data-path ones, so {@code vhost_net_start} gets
 * no control queue); crosvm hands it over. So a TAP queue is attached (TUNSETQUEUE) while its pair's RX
 * runs and, once the front-end handed us the control queue, only for the first pairs the driver enabled
 * with VQ_PAIRS_SET (one until it does, 5.1.6.5.5). TAP queue 0 stays attached.
 */
public final class NetDevice implements VhostUserDevice, AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(NetDevice.class);

    private final String name;
    private final NetConfig config;
    private final Tap tap;
    private final byte[] configSpace;
    private final long features;
    private final PairDataPath[] pairs;
    private final ControlQueue control;
    /** Written on the control thread before queues start; the host's queue hand-over orders it. */
    private volatile long ackedFeatures;

    /** Which TAP queues are attached. */
    private final TapSteering steering;

    NetDevice(String name, NetConfig config, Tap tap, DeviceContext context) {
        this(name, config, tap, context, false);
    }

    /**
     * @param handedOver whether {@code tap} is the previous jvhost's (a hot upgrade): that process still
     *                   serves it, so no TAP queue is attached or detached here until {@link #restoreState}
     *                   says how they stand
     */
    NetDevice(String name, NetConfig config, Tap tap, DeviceContext context, boolean handedOver) {
        this.name = name;
        this.config = config;
        this.tap = tap;
        this.configSpace = config.configSpace();
        this.features = offer(config, tap.supportedOffloads());
        this.pairs = new PairDataPath[config.queuePairs()];
        for (int i = 0; i < pairs.length; i++) {
            pairs[i] = new PairDataPath(name, tap, i, context, i, config.mtu());
        }
        this.control = new ControlQueue(name, pairs.length, new ControlQueue.Commands() {
            @Override
            public boolean setQueuePairs(int count) {
                return steering.enablePairs(count);
            }

            @Override
            public boolean setGuestOffloads(long offloads) {
                return applyGuestOffloads(offloads);
            }
        });
        this.steering = new TapSteering(name, tap, pairs.length, handedOver);
    }

    /**
     * STATUS (link up in config space), MRG_RXBUF, the HOST_* offloads (the TAP takes any header the
     * driver sends), the GUEST_* offloads the TAP accepted when probed, MAC and MTU when configured, MQ
     * with more than one pair; CTRL_VQ, and CTRL_GUEST_OFFLOADS when there is a GUEST_* offload to switch.
     */
    static long offer(NetConfig config, int tapOffloads) {
        long guest = TunOffloads.guestFeatures(tapOffloads);
        long f = VirtioNet.F_STATUS | VirtioNet.F_MRG_RXBUF | TunOffloads.HOST_FEATURES | guest
                | VirtioNet.F_CTRL_VQ;
        if (guest != 0) {
            f |= VirtioNet.F_CTRL_GUEST_OFFLOADS;
        }
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

    /** GUEST_OFFLOADS_SET: the TAP hands over only the offloaded frames the driver still wants. */
    private boolean applyGuestOffloads(long offloads) {
        int flags = TunOffloads.tunFlags(offloads);
        try {
            tap.setOffloads(flags);
            LOG.debug("{}: driver set guest offloads 0x{}, TAP offloads 0x{}", name, Long.toHexString(offloads),
                    Integer.toHexString(flags));
            return true;
        } catch (IOException e) {
            LOG.warn("{}: {}; the driver's offload change is refused", name, e.getMessage());
            return false;
        }
    }

    @Override
    public int deviceType() {
        return VirtioNet.DEVICE_ID;
    }

    @Override
    public int maxQueues() {
        return 2 * pairs.length + 1;
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
    public boolean canAnnounce() {
        return true;
    }

    /**
     * Broadcasts a RARP from the guest's {@code mac} out of TAP queue 0 (a TAP queue's writes are whole
     * frames, so this one cannot tear a frame a worker writes meanwhile); the bridge the TAP is in learns
     * that the guest is behind it now.
     */
    @Override
    public void announce(byte[] mac) {
        byte[] rarp = RarpAnnouncement.frame(mac);
        byte[] frame = new byte[VirtioNet.headerLength(ackedFeatures) + rarp.length]; // a zero header: no offload
        System.arraycopy(rarp, 0, frame, frame.length - rarp.length, rarp.length);
        long n = tap.write(0, frame);
        if (n < 0) {
            LOG.warn("{}: cannot send the RARP announcing guest {} to {}: {}", name, VirtioNet.formatMac(mac),
                    tap.name(), TapNatives.errnoName((int) -n));
        } else {
            LOG.info("{}: announced guest {} on {} (RARP)", name, VirtioNet.formatMac(mac), tap.name());
        }
    }

    @Override
    public int configSize() {
        return configSpace.length;
    }

    @Override
    public void readConfig(int offset, byte[] dst) {
        System.arraycopy(configSpace, offset, dst, 0, dst.length);
    }

    /**
     * TX queues are the odd ones (the control queue's index is even). While the front-end keeps one
     * disabled, the host returns what the driver sends on it; those frames never reach the TAP.
     */
    @Override
    public boolean isTransmitQueue(int queueIndex) {
        return VirtioNet.isTxQueue(queueIndex);
    }

    /** RX n, TX n and TAP queue n share group n; the control queue has group {@code pairs} to itself. */
    @Override
    public int queueGroup(int queueIndex) {
        return isControl(queueIndex) ? pairs.length : queueIndex / 2;
    }

    private boolean isControl(int queueIndex) {
        return queueIndex == VirtioNet.controlQueueIndex(ackedFeatures, pairs.length);
    }

    @Override
    public void startQueue(int queueIndex, Virtqueue queue) {
        if (isControl(queueIndex)) {
            steering.controlStarted();
            control.attach(queue, ackedFeatures);
            LOG.debug("{}: control queue {} started (size {})", name, queueIndex, queue.size());
            return;
        }
        PairDataPath pair = pair(queueIndex);
        pair.setFeatures(ackedFeatures);
        if (VirtioNet.isRxQueue(queueIndex)) {
            steering.setRxRunning(queueIndex / 2, true);
            pair.attachRx(queue);
        } else {
            pair.attachTx(queue);
        }
        LOG.debug("{}: queue {} started (size {})", name, queueIndex, queue.size());
    }

    @Override
    public void handleKick(int queueIndex) {
        if (isControl(queueIndex)) {
            control.drain();
            return;
        }
        PairDataPath pair = pair(queueIndex);
        if (VirtioNet.isRxQueue(queueIndex)) {
            pair.rxKick();
        } else {
            pair.drainTx();
        }
    }

    @Override
    public Virtqueue stopQueue(int queueIndex) {
        if (isControl(queueIndex)) {
            LOG.debug("{}: control queue {} stopped", name, queueIndex);
            return control.detach(); // the driver's pair count stays until reset
        }
        PairDataPath pair = pair(queueIndex);
        Virtqueue queue;
        if (VirtioNet.isRxQueue(queueIndex)) {
            queue = pair.detachRx();
            steering.setRxRunning(queueIndex / 2, false);
        } else {
            queue = pair.detachTx();
        }
        LOG.debug("{}: queue {} stopped", name, queueIndex);
        return queue;
    }

    /**
     * A hot upgrade's pause: as {@link #stopQueue}, but an RX queue's TAP queue stays attached. Detached,
     * the kernel would purge the frames it holds (tun.c) and steer new ones to the other queues; attached,
     * they wait in the TAP queue for whoever starts the RX queue next (the successor, whose state says it
     * is attached, or this process if the upgrade is abandoned).
     */
    @Override
    public Virtqueue pauseQueue(int queueIndex) {
        if (isControl(queueIndex) || !VirtioNet.isRxQueue(queueIndex)) {
            return stopQueue(queueIndex);
        }
        Virtqueue queue = pair(queueIndex).detachRx();
        steering.pauseRx(queueIndex / 2);
        LOG.debug("{}: queue {} paused for a hot upgrade (TAP queue {} stays attached)", name, queueIndex,
                queueIndex / 2);
        return queue;
    }

    /** Queues are all stopped already; the negotiated features go and the TAP's receive offloads with them. */
    @Override
    public void reset() {
        ackedFeatures = 0;
        steering.reset();
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
                sum += pair.counters().get(slot);
            }
            sums.put(PairDataPath.COUNTER_NAMES[slot], sum);
        }
        for (int slot = 0; slot < ControlQueue.COUNTER_NAMES.length; slot++) {
            sums.put(ControlQueue.COUNTER_NAMES[slot], control.counters().get(slot));
        }
        return sums;
    }

    /**
     * Hot upgrade: the TAP's queues go to the next process as fds ({@link NetState}); this device keeps its
     * own and, if the upgrade fails, serves on with them.
     */
    @Override
    public DeviceState saveState() {
        long[][] pairCounters = new long[pairs.length][];
        for (int p = 0; p < pairs.length; p++) {
            pairCounters[p] = pairs[p].counters().snapshot();
        }
        return NetState.save(tap, new NetState.Device(steering.driverPairs(), steering.attached(), pairCounters,
                control.counters().snapshot()));
    }

    /**
     * The TAP's fds and what it was opened with ({@link #saveState()} without the steering and counters): they
     * do not change while the queues run, so the next process opens its device on them before this one
     * pauses (and attaches or detaches no TAP queue until its state comes).
     */
    @Override
    public DeviceState saveResources() {
        return NetState.save(tap);
    }

    /**
     * The state {@link NetProvider#create} took this device's TAP from (on duplicates of its fds): checked
     * once more against the TAP, then its fds are closed, the device owning them.
     *
     * @throws IllegalArgumentException if the state is not a net device's or names another TAP
     */
    @Override
    public void restoreState(DeviceState state) {
        NetState s = NetState.read(state);
        if (!s.tapName().equals(tap.name()) || s.pairs() != tap.queueCount()) {
            throw new IllegalArgumentException(name + ": the previous jvhost's TAP " + s.tapName() + " (" + s.pairs()
                    + " queue pairs) is not this device's " + tap);
        }
        LinuxTap.closeAll(state.fds());
        NetState.Device d = s.device();
        steering.restore(d == null ? 0 : d.driverPairs(), d == null ? null : d.attached());
        if (d != null) {
            for (int p = 0; p < pairs.length; p++) {
                pairs[p].counters().restore(d.pairCounters()[p]);
            }
            control.counters().restore(d.controlCounters());
        }
        LOG.info("{}: took over {} from the previous jvhost", name, tap);
    }

    /** Closes the TAP (a TAP jvhost created disappears). Call only with every queue stopped. */
    @Override
    public void close() {
        tap.close();
    }

    private PairDataPath pair(int queueIndex) {
        if (queueIndex < 0 || queueIndex >= 2 * pairs.length) {
            throw new IllegalArgumentException(name + ": queue index " + queueIndex + " out of range: the device has "
                    + pairs.length + " queue pairs (queues 0.." + (2 * pairs.length - 1) + ") and its control queue is "
                    + (VirtioNet.controlQueueIndex(ackedFeatures, pairs.length) < 0 ? "not negotiated"
                    : "queue " + VirtioNet.controlQueueIndex(ackedFeatures, pairs.length)));
        }
        return pairs[queueIndex / 2];
    }

    @Override
    public String toString() {
        return name + " (net, " + config + ", " + tap + ")";
    }
}
