package org.jvhost.device.loopback;

import java.nio.ByteBuffer;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.DeviceState;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.spi.Virtqueue;
import org.jvhost.spi.virtio.VirtioNet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The SPI glue of the loopback device: features, config space, queue hand-over and the TX processing
 * loop. Queue {@code 2n} is RX and {@code 2n+1} is TX of pair {@code n} (virtio 1.2 5.1.2); there is no
 * control queue (QEMU and DPDK's virtio_user emulate it in the front-end for vhost-user back-ends).
 *
 * <p>Both queues of a pair share a queue group, so the TX worker may write the RX queue without locks.
 */
public final class LoopbackDevice implements VhostUserDevice {
    private static final Logger LOG = LoggerFactory.getLogger(LoopbackDevice.class);

    /**
     * Most frames reflected before RX and TX are published. A driver that sends in bursts (testpmd:
     * 32) can then start on the first frames while the rest are still being copied, instead of the two
     * sides taking turns over everything in flight.
     */
    static final int BATCH = 32;

    /**
     * Most TX frames reflected per kick. A driver that sends without pause (testpmd txonly or io) would
     * otherwise keep the drain, and with it the worker thread, busy for as long as it sends, starving
     * the other queues and fd watches of that worker and the host's requests to it (GET_VRING_BASE,
     * memory updates), which time out. Past this budget the drain returns with frames pending and the
     * host calls it again after the worker's other work (the {@link Virtqueue} contract). A multiple of
     * {@link #BATCH}, and large enough that the extra call costs little per frame.
     */
    static final int TX_BUDGET = 256;

    /** The {@link DeviceState} this device saves across a hot upgrade. */
    static final String STATE_FORMAT = "org.jvhost.loopback.counters";
    static final int STATE_VERSION = 1;

    private final String name;
    private final LoopbackConfig config;
    private final byte[] configSpace;
    private final QueuePair[] pairs;
    /** Written on the control thread before queues start; the host's queue hand-over orders it. */
    private volatile long ackedFeatures;
    /** SEND_RARP requests: a guest that migrated here announced (there is no network to tell). */
    private final AtomicLong announcements = new AtomicLong();

    /** The queues of one pair and their data path; touched only on the pair's worker. */
    private static final class QueuePair {
        final FrameReflector reflector = new FrameReflector();
        Virtqueue rx;
        Virtqueue tx;
        /** A batch of TX chains, popped before any is reflected. */
        DescriptorChain[] txChains;
    }

    public LoopbackDevice(String name, LoopbackConfig config) {
        this.name = name;
        this.config = config;
        this.configSpace = config.configSpace();
        this.pairs = new QueuePair[config.queuePairs()];
        for (int i = 0; i < pairs.length; i++) {
            pairs[i] = new QueuePair();
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

    /**
     * MAC and STATUS (both config-space fields we fill), MRG_RXBUF if enabled, MQ with more than one pair.
     * The spec makes MQ depend on CTRL_VQ (5.1.3.1); for vhost-user the front-end owns the control
     * queue (QEMU handles it in virtio-net, virtio_user in its own cvq) and enables pairs with
     * SET_VRING_ENABLE, so the back-end offers MQ without a control queue, as DPDK's net_vhost does.
     * IN_ORDER: each queue's chains go back in the order they were popped (a TX chain right after its
     * frame, RX chains in the order the frames filled them, nothing deferred), as DPDK's net_vhost also
     * offers; DPDK's virtio_user then takes its in-order paths and reads one used entry per TX batch.
     */
    @Override
    public long features() {
        long features = VirtioNet.F_MAC | VirtioNet.F_STATUS | VirtioFeatures.IN_ORDER;
        if (config.mergeableRxBuffers()) {
            features |= VirtioNet.F_MRG_RXBUF;
        }
        if (pairs.length > 1) {
            features |= VirtioNet.F_MQ;
        }
        return features;
    }

    @Override
    public void ackFeatures(long acked) {
        ackedFeatures = acked;
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
     * TX queues are the odd ones. While the front-end keeps one disabled, the host returns what the driver
     * sends on it without reflecting it; the frames never reach this device.
     */
    @Override
    public boolean isTransmitQueue(int queueIndex) {
        return VirtioNet.isTxQueue(queueIndex);
    }

    /** RX n and TX n share group n: the TX path writes into RX without locks. */
    @Override
    public int queueGroup(int queueIndex) {
        return queueIndex / 2;
    }

    @Override
    public void startQueue(int queueIndex, Virtqueue queue) {
        QueuePair pair = pair(queueIndex);
        pair.reflector.setFeatures(ackedFeatures);
        if (VirtioNet.isRxQueue(queueIndex)) {
            // This device never waits for RX buffers (a frame without one is dropped at once), so an RX
            // kick tells it nothing: ask the driver not to send them, which saves it an eventfd write per
            // refill. A device that parks frames until buffers come (a TAP back-end) must keep RX kicks.
            queue.disableNotifications();
            pair.rx = queue;
            pair.reflector.attachRx(queue);
        } else {
            pair.tx = queue;
            pair.txChains = new DescriptorChain[BATCH];
            for (int i = 0; i < BATCH; i++) {
                pair.txChains[i] = queue.newChain();
            }
        }
        LOG.debug("{}: queue {} started (size {})", name, queueIndex, queue.size());
    }

    /**
     * An RX kick only says the driver posted buffers. Frames are never queued waiting for them (a frame
     * without a buffer is dropped at once), so there is nothing to deliver; the next TX frame uses them.
     * RX kicks are suppressed at start (VRING_USED_F_NO_NOTIFY is advisory, so some still come).
     */
    @Override
    public void handleKick(int queueIndex) {
        if (!VirtioNet.isRxQueue(queueIndex)) {
            drainTx(pair(queueIndex));
        }
    }

    /**
     * The Virtqueue processing loop: a batch of TX chains is popped, its frames reflected (in phases,
     * {@link FrameReflector#reflect(DescriptorChain[], int)}), then every TX chain goes back with 0
     * bytes written, whatever became of its frame. RX and TX are published every {@link #BATCH}
     * frames, so the receiver works on frames while a long TX burst is still being copied. After {@link #TX_BUDGET} frames the drain returns
     * with notifications still disabled and frames possibly pending; the host calls it again without a
     * kick, after serving the rest of the worker.
     */
    private static void drainTx(QueuePair pair) {
        Virtqueue tx = pair.tx;
        if (tx == null) {
            return;
        }
        DescriptorChain[] chains = pair.txChains;
        FrameReflector reflector = pair.reflector;
        int budget = TX_BUDGET;
        do {
            tx.disableNotifications();
            int popped;
            do {
                popped = 0;
                while (popped < BATCH && tx.pop(chains[popped])) {
                    popped++;
                }
                boolean delivered = reflector.reflect(chains, popped);
                for (int i = 0; i < popped; i++) {
                    tx.addUsed(chains[i], 0);
                }
                reflector.publishCounters();
                if (delivered) {
                    pair.rx.signalUsed();
                }
                tx.signalUsed();
                budget -= popped;
                if (budget <= 0) {
                    return; // fairness: the host re-delivers, notifications stay off meanwhile
                }
            } while (popped == BATCH);
        } while (tx.enableNotifications());
    }

    @Override
    public Virtqueue stopQueue(int queueIndex) {
        QueuePair pair = pair(queueIndex);
        Virtqueue queue;
        if (VirtioNet.isRxQueue(queueIndex)) {
            queue = pair.rx;
            pair.rx = null;
            pair.reflector.detachRx();
        } else {
            queue = pair.tx;
            pair.tx = null;
            pair.txChains = null;
        }
        LOG.debug("{}: queue {} stopped", name, queueIndex);
        return queue;
    }

    /** Queues are all stopped already; only the negotiated features go. Counters keep counting. */
    @Override
    public void reset() {
        ackedFeatures = 0;
    }

    /** Nothing: a loopback opens nothing, so the next process creates it before this one pauses. */
    @Override
    public DeviceState saveResources() {
        return new DeviceState(STATE_FORMAT, STATE_VERSION, new byte[0]);
    }

    /**
     * Hot upgrade: the counters carry over, so they keep counting in the new process. The state is
     * {@link #STATE_FORMAT} version {@link #STATE_VERSION}:
     * <pre>
     *   u32 pairs | pairs x (u32 counters | counters x u64) | u64 announcements      (big-endian)
     * </pre>
     * Counters are listed in {@link FrameReflector#COUNTER_NAMES} order; a version that adds counters
     * appends them, so a reader takes the ones it knows and skips the rest.
     */
    @Override
    public DeviceState saveState() {
        ByteBuffer b = ByteBuffer.allocate(4 + pairs.length * (4 + 8 * FrameReflector.COUNTER_NAMES.length) + 8);
        b.putInt(pairs.length);
        for (QueuePair p : pairs) {
            b.putInt(FrameReflector.COUNTER_NAMES.length);
            for (int slot = 0; slot < FrameReflector.COUNTER_NAMES.length; slot++) {
                b.putLong(p.reflector.counter(slot));
            }
        }
        b.putLong(announcements.get());
        return new DeviceState(STATE_FORMAT, STATE_VERSION, b.array());
    }

    /**
     * Takes the counters of a {@link #saveState()} (any version up to {@link #STATE_VERSION}); pairs
     * this device does not have are dropped.
     *
     * @throws IllegalArgumentException for another format, a newer version, or a truncated state
     */
    @Override
    public void restoreState(DeviceState state) {
        if (!STATE_FORMAT.equals(state.format()) || state.version() < 1 || state.version() > STATE_VERSION) {
            throw new IllegalArgumentException(name + ": cannot read device state " + state.format() + " v"
                    + state.version() + " (this loopback reads " + STATE_FORMAT + " v1.." + STATE_VERSION + ")");
        }
        ByteBuffer b = ByteBuffer.wrap(state.data());
        try {
            int saved = b.getInt();
            for (int i = 0; i < saved; i++) {
                int n = b.getInt();
                for (int slot = 0; slot < n; slot++) {
                    long v = b.getLong();
                    if (i < pairs.length && slot < FrameReflector.COUNTER_NAMES.length) {
                        pairs[i].reflector.restoreCounter(slot, v);
                    }
                }
            }
            announcements.set(b.getLong());
        } catch (java.nio.BufferUnderflowException e) {
            throw new IllegalArgumentException(name + ": device state " + state + " is truncated", e);
        }
    }

    /** Counts the announcement: a loopback card has no network to tell where the guest went. */
    @Override
    public boolean canAnnounce() {
        return true;
    }

    @Override
    public void announce(byte[] mac) {
        announcements.incrementAndGet();
        LOG.info("{}: guest {} announced after a migration", name, VirtioNet.formatMac(mac));
    }

    /**
     * Sums over all pairs (see {@link FrameReflector} for what each counter counts), and
     * {@code announcements}, the guests announced after a migration (SEND_RARP).
     */
    @Override
    public Map<String, Long> counters() {
        Map<String, Long> sums = new LinkedHashMap<>();
        for (int slot = 0; slot < FrameReflector.COUNTER_NAMES.length; slot++) {
            long sum = 0;
            for (QueuePair pair : pairs) {
                sum += pair.reflector.counter(slot);
            }
            sums.put(FrameReflector.COUNTER_NAMES[slot], sum);
        }
        sums.put("announcements", announcements.get());
        return sums;
    }

    /** RX queue 2n: pair n's rx_* counters; TX queue 2n+1: its tx_* counters. */
    @Override
    public Map<String, Long> queueCounters(int queueIndex) {
        if (queueIndex < 0 || queueIndex >= maxQueues()) {
            return Map.of();
        }
        FrameReflector reflector = pairs[queueIndex / 2].reflector;
        String direction = queueIndex % 2 == 0 ? "rx_" : "tx_";
        Map<String, Long> counters = new LinkedHashMap<>();
        for (int slot = 0; slot < FrameReflector.COUNTER_NAMES.length; slot++) {
            if (FrameReflector.COUNTER_NAMES[slot].startsWith(direction)) {
                counters.put(FrameReflector.COUNTER_NAMES[slot], reflector.counter(slot));
            }
        }
        return counters;
    }

    private QueuePair pair(int queueIndex) {
        if (queueIndex < 0 || queueIndex >= maxQueues()) {
            throw new IllegalArgumentException(name + ": queue index " + queueIndex
                    + " out of range, the device has " + maxQueues() + " queues");
        }
        return pairs[queueIndex / 2];
    }

    @Override
    public String toString() {
        return name + " (loopback, " + config + ")";
    }
}
