package org.jvhost.device.net;

import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.spi.Virtqueue;
import org.jvhost.spi.virtio.VirtioNet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The data path of one queue pair: TX chains go to the pair's TAP queue, one writev each, written in
 * batches of {@link #TX_BATCH} with one system call when the TAP has an io_uring; frames from the TAP
 * land in RX chains, one readv each, read in batches of up to {@link RxBatch#MAX_SLOTS} the same way.
 * Guest buffers are handed to the kernel directly (iovecs of their native addresses), so no byte is
 * copied in user space (but see {@link RxBatch} for the rare frame moved); the virtio-net header
 * travels with the frame because the TAP speaks the same header (IFF_VNET_HDR, TUNSETVNETHDRSZ).
 *
 * <pre>
 * TX chain (readable):   | virtio_net_hdr | frame ...           |  --writev-->  TAP queue
 * TAP queue  --readv-->  RX chain 0 (writable): | virtio_net_hdr | frame ... | RX chain 1 | ...
 *                        num_buffers (hdr bytes 10-11) = chains used, written after the read
 * </pre>
 *
 * <p>RX is driven by the TAP fd's readiness ({@link DeviceContext#watchReadable}, on the pair's worker).
 * When the driver has posted no buffer the watch is paused and RX notifications are enabled, so the
 * TAP keeps its frames (and drops beyond its queue length, like a NIC with a full ring) until the
 * driver kicks RX; while the watch runs, RX kicks are suppressed because readiness drives RX.
 *
 * <p>Per frame nothing is allocated and nothing thrown: iovec arrays are native memory allocated once,
 * errors become counters. Used on the pair's worker only; counters may be read from any thread.
 */
final class PairDataPath {
    private static final Logger LOG = LoggerFactory.getLogger(PairDataPath.class);

    /** Frames read per readiness callback, so a flooding TAP cannot starve TX on the same worker. */
    static final int RX_BUDGET = 2 * RxBatch.MAX_SLOTS;
    /**
     * TX chains written to the TAP with one {@link Tap#writeFrames} call (one io_uring_enter when the TAP
     * batches) and then published to the used ring together. Publishing only at the end of a drain would
     * leave a polling driver with a full ring for the whole drain and then let it refill while we wait:
     * its work and ours would alternate instead of overlapping.
     */
    static final int TX_BATCH = 32;
    /**
     * Chains one TX drain takes before it returns with work left, so one busy guest cannot keep the
     * worker from its other queues and commands (the {@link Virtqueue} fairness contract). A multiple of
     * {@link #TX_BATCH}.
     */
    static final int TX_BUDGET = 256;
    private static final int ETH_HLEN = 14;

    static final int TX_FRAMES = 0, TX_BYTES = 1, TX_DROPPED = 2, TX_MALFORMED = 3,
            RX_FRAMES = 4, RX_BYTES = 5, RX_DROPPED_TRUNCATED = 6, RX_ERRORS = 7, RX_NO_BUFFER = 8;
    /**
     * Bytes are frame bytes without the header. tx_dropped: the TAP refused a frame (EIO while it is down,
     * EINVAL for an inconsistent GSO header); tx_malformed: a chain shorter than header plus Ethernet
     * header (returned unsent); rx_dropped_truncated: a frame larger than the buffers taken for it;
     * rx_errors: TAP reads failing with anything but EAGAIN; rx_no_buffer: times RX stopped reading the TAP
     * because the driver had no buffers posted.
     */
    static final String[] COUNTER_NAMES = {"tx_frames", "tx_bytes", "tx_dropped", "tx_malformed",
        "rx_frames", "rx_bytes", "rx_dropped_truncated", "rx_errors", "rx_no_buffer"};

    private final String name;
    private final Tap tap;
    private final int queue;
    private final DeviceContext context;
    private final int group;
    private final Runnable onReadable = this::receive;
    private final OwnedCounters counters = new OwnedCounters(COUNTER_NAMES.length);

    private final IovecArray txIov;
    private final IovecArray rxIov;
    private final RxBatch rxBatch;
    /** Frames the next RX batch reads: twice what the last one found, so a trickle costs few empty reads. */
    private int rxBatchSize = 1;

    // the TX batch's frames (its well-formed chains): where their iovecs start in txIov and how many,
    // what the TAP answered
    private int txFrames;
    private final int[] txFirst = new int[TX_BATCH];
    private final int[] txCount = new int[TX_BATCH];
    private final long[] txResult = new long[TX_BATCH];

    private int headerLength = VirtioNet.HDR_LEN;

    private Virtqueue tx;
    private final DescriptorChain[] txChains = new DescriptorChain[TX_BATCH];
    private Virtqueue rx;
    private DeviceContext.FdWatch watch;
    private boolean paused;
    private int lastTxErrno;

    PairDataPath(String name, Tap tap, int queue, DeviceContext context, int group, int mtu) {
        this.name = name;
        this.tap = tap;
        this.queue = queue;
        this.context = context;
        this.group = group;
        this.txIov = new IovecArray(name);
        this.rxIov = new IovecArray(name);
        this.rxBatch = new RxBatch(rxIov, mtu);
        setFeatures(VirtioFeatures.VERSION_1);
    }

    /** Adopts the negotiated features: header length, mergeable buffers, how big a received frame can be. */
    void setFeatures(long acked) {
        headerLength = VirtioNet.headerLength(acked);
        rxBatch.setFeatures(acked);
    }

    void attachTx(Virtqueue queue) {
        tx = queue;
        for (int i = 0; i < TX_BATCH; i++) {
            txChains[i] = queue.newChain();
        }
    }

    Virtqueue detachTx() {
        Virtqueue q = tx;
        tx = null;
        java.util.Arrays.fill(txChains, null);
        return q;
    }

    /** Starts RX: a chain pool for the ring, and a readiness watch on the TAP queue. */
    void attachRx(Virtqueue queue) {
        rx = queue;
        rxBatch.attach(queue);
        rxBatchSize = 1;
        paused = false;
        queue.disableNotifications(); // readiness drives RX until the buffers run out
        watch = context.watchReadable(tap.fd(this.queue), group, onReadable);
    }

    /** Stops RX; frames stay in the TAP until the next {@link #attachRx}. */
    Virtqueue detachRx() {
        if (watch != null) {
            watch.close();
            watch = null;
        }
        Virtqueue q = rx;
        rx = null;
        rxBatch.detach();
        return q;
    }

    /** The driver posted RX buffers: read the TAP again if it was paused for lack of them. */
    void rxKick() {
        Virtqueue q = rx;
        if (q == null) {
            return;
        }
        if (paused) {
            paused = false;
            q.disableNotifications();
            watch.resume();
        }
        receive();
    }

    // ---- TX: guest -> TAP ----------------------------------------------------------------------

    /**
     * The virtqueue processing loop (see {@link Virtqueue}), a batch at a time: up to {@link #TX_BATCH}
     * chains are written to the TAP with one {@link Tap#writeFrames} and go back to the used ring with 0
     * bytes written, published together, so the driver refills while the drain goes on; the driver is
     * signalled (if it wants that) once per drain. After {@link #TX_BUDGET} chains the drain returns with
     * notifications still disabled: a driver that keeps the ring full would otherwise hold the worker (and
     * this pair's RX, and other devices) forever; the host calls it again after the worker's other work.
     */
    void drainTx() {
        Virtqueue q = tx;
        if (q == null) {
            return;
        }
        int budget = TX_BUDGET;
        do {
            q.disableNotifications();
            int n;
            while ((n = popBatch(q)) > 0) {
                transmitBatch(q, n);
                budget -= n;
                if (budget <= 0) {
                    q.signalUsed();
                    return; // fairness: the host re-delivers, notifications stay off meanwhile
                }
            }
            q.signalUsed();
        } while (q.enableNotifications());
    }

    /**
     * Pops up to {@link #TX_BATCH} chains and lays out each one's readable segments (header first, as the
     * TAP expects them) as consecutive iovecs, recording frame {@code txFrames}'s range in
     * {@code txFirst}/{@code txCount}. A chain too short for a header and an Ethernet header, or with more
     * segments than one writev takes, is not a frame: it only goes back, unsent. The batch ends early
     * when the next chain's segments would not fit the iovec array.
     *
     * @return chains popped (the frames among them: {@code txFrames})
     */
    private int popBatch(Virtqueue q) {
        int n = 0;
        int frames = 0;
        int iov = 0;
        while (n < TX_BATCH && q.pop(txChains[n])) {
            DescriptorChain chain = txChains[n];
            int segments = chain.readableSegments();
            if (chain.readableBytes() >= headerLength + ETH_HLEN && segments <= TapNatives.IOV_MAX) {
                if (iov + segments > TapNatives.IOV_MAX) {
                    q.unpop(1);
                    break;
                }
                txFirst[frames] = iov;
                txCount[frames] = segments;
                frames++;
                for (int i = 0; i < segments; i++) {
                    txIov.put(iov++, chain, i);
                }
            }
            n++;
        }
        txFrames = frames;
        return n;
    }

    /** Writes the batch's {@code txFrames} frames, counts every outcome and publishes all {@code n} chains. */
    private void transmitBatch(Virtqueue q, int n) {
        int frames = txFrames;
        tap.writeFrames(queue, txIov.address(), txFirst, txCount, frames, txResult);
        long sent = 0;
        long bytes = 0;
        for (int i = 0; i < frames; i++) {
            long r = txResult[i];
            if (r >= 0) {
                sent++;
                bytes += r - headerLength;
            } else {
                increment(TX_DROPPED, 1);
                noteTxError((int) -r);
            }
        }
        if (frames < n) {
            increment(TX_MALFORMED, n - frames);
        }
        increment(TX_FRAMES, sent);
        increment(TX_BYTES, bytes);
        for (int i = 0; i < n; i++) {
            q.addUsed(txChains[i], 0);
        }
        q.publishUsed();
    }

    /** Logs the first of a run of TX errors with the same errno (logging allocates; this is rare). */
    private void noteTxError(int errno) {
        if (errno != lastTxErrno) {
            lastTxErrno = errno;
            LOG.warn("{}: TAP {} refused a frame from queue {} ({}{}); counting further ones in tx_dropped", name,
                    tap.name(), 2 * queue + 1, TapNatives.errnoName(errno),
                    errno == TapNatives.EIO ? ": the interface is down" : "");
        }
    }

    // ---- RX: TAP -> guest ----------------------------------------------------------------------

    /**
     * Reads frames from the TAP into RX chains, a batch at a time ({@link RxBatch}: one {@link
     * Tap#readFrames}, one io_uring_enter when the TAP has a ring), until a read finds the TAP empty, the
     * budget is spent or buffers run out; publishes each batch and signals the driver once.
     */
    void receive() {
        Virtqueue q = rx;
        if (q == null || !q.isEnabled()) {
            pause();
            return;
        }
        boolean delivered = false;
        for (int budget = RX_BUDGET; budget > 0; ) {
            int slots = rxBatch.gather(q, Math.min(rxBatchSize, budget));
            // no buffers: ask for a kick, then look once more in case the driver posted meanwhile
            if (slots == 0 && (!q.enableNotifications() || (slots = rxBatch.gather(q, 1)) == 0)) {
                pause();
                break;
            }
            tap.readFrames(queue, rxIov.address(), rxBatch.firsts, rxBatch.counts, slots, rxBatch.results);
            rxBatch.deliver(q);
            budget -= slots;
            int frames = rxBatch.delivered;
            rxBatchSize = Math.max(1, Math.min(RxBatch.MAX_SLOTS, 2 * frames));
            increment(RX_FRAMES, frames);
            increment(RX_BYTES, rxBatch.deliveredBytes);
            increment(RX_DROPPED_TRUNCATED, rxBatch.truncated);
            increment(RX_ERRORS, rxBatch.errors);
            if (frames > 0) {
                delivered = true;
                q.publishUsed();
            }
            if (rxBatch.drained || rxBatch.errors > 0) {
                break;
            }
        }
        if (delivered) {
            q.signalUsed();
        }
    }

    private void pause() {
        if (!paused && watch != null) {
            paused = true;
            increment(RX_NO_BUFFER, 1);
            watch.pause();
        }
    }

    // ---- helpers -------------------------------------------------------------------------------

    private void increment(int slot, long by) {
        counters.add(slot, by);
    }

    /** The counters, in {@link #COUNTER_NAMES} order: read from any thread, restored by a hot upgrade before any queue runs. */
    OwnedCounters counters() {
        return counters;
    }

    boolean isPaused() {
        return paused;
    }
}
