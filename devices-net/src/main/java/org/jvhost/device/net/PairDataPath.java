package org.jvhost.device.net;

import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.AtomicLongArray;
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
 * land in RX chains with one readv. Guest buffers are handed to the kernel directly (iovecs of
 * their native addresses), so no byte is copied in user space; the virtio-net header travels with the
 * frame because the TAP speaks the same header (IFF_VNET_HDR, TUNSETVNETHDRSZ).
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
    static final int RX_BUDGET = 64;
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
    /** RX chains one frame may span with MRG_RXBUF: a 64 KiB GSO frame in 1.5 KiB buffers needs 44. */
    static final int MAX_RX_CHAINS = 64;
    private static final int ETH_HLEN = 14;
    /** Ethernet header plus one VLAN tag, on top of the MTU. */
    private static final int LINK_OVERHEAD = ETH_HLEN + 4;
    /** The most an IPv4/IPv6 GSO packet carries (16-bit length), the size of a guest-GSO frame. */
    private static final int GSO_MAX = 65535;
    private static final int DEFAULT_MTU = 1500;

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
    private final int mtu;
    private final Runnable onReadable = this::receive;
    private final AtomicLongArray counters = new AtomicLongArray(COUNTER_NAMES.length);

    private final Memory txIov = new Memory((long) TapNatives.IOV_MAX * TapNatives.IOVEC_SIZE);
    private final Memory rxIov = new Memory((long) TapNatives.IOV_MAX * TapNatives.IOVEC_SIZE);
    private final ByteBuffer txIovView = txIov.getByteBuffer(0, txIov.size()).order(ByteOrder.nativeOrder());
    private final ByteBuffer rxIovView = rxIov.getByteBuffer(0, rxIov.size()).order(ByteOrder.nativeOrder());
    private final long txIovAddress = Pointer.nativeValue(txIov);
    private final long rxIovAddress = Pointer.nativeValue(rxIov);
    private final byte[] numBuffers = new byte[2];

    // the TX batch's frames (its well-formed chains): where their iovecs start in txIov and how many,
    // what the TAP answered
    private int txFrames;
    private final int[] txFirst = new int[TX_BATCH];
    private final int[] txCount = new int[TX_BATCH];
    private final long[] txResult = new long[TX_BATCH];

    private int headerLength = VirtioNet.HDR_LEN;
    private boolean mergeable;
    /** RX room to gather before a read: enough for the largest frame the TAP may hand over. */
    private int rxTarget;
    /** Less room than this and RX waits for buffers rather than risk truncating an MTU-sized frame. */
    private int rxMinimum;

    private Virtqueue tx;
    private final DescriptorChain[] txChains = new DescriptorChain[TX_BATCH];
    private Virtqueue rx;
    private DescriptorChain[] rxChains = new DescriptorChain[0];
    private int[] rxWritten = new int[0];
    private int rxIovCount;
    private long rxRoom;
    private DeviceContext.FdWatch watch;
    private boolean paused;
    private int lastTxErrno;

    /** Cache for guest memory that is not natively mapped (test fakes): the last window and its address. */
    private ByteBuffer lastWindow;
    private long lastWindowAddress;

    PairDataPath(String name, Tap tap, int queue, DeviceContext context, int group, int mtu) {
        this.name = name;
        this.tap = tap;
        this.queue = queue;
        this.context = context;
        this.group = group;
        this.mtu = mtu == 0 ? DEFAULT_MTU : mtu;
        setFeatures(VirtioFeatures.VERSION_1);
    }

    /** Adopts the negotiated features: header length, mergeable buffers, how big a received frame can be. */
    void setFeatures(long acked) {
        headerLength = VirtioNet.headerLength(acked);
        mergeable = VirtioFeatures.has(acked, VirtioNet.F_MRG_RXBUF);
        boolean guestGso = (acked & (VirtioNet.F_GUEST_TSO4 | VirtioNet.F_GUEST_TSO6 | VirtioNet.F_GUEST_UFO)) != 0;
        rxMinimum = headerLength + Math.max(mtu, DEFAULT_MTU) + LINK_OVERHEAD;
        rxTarget = guestGso ? headerLength + GSO_MAX + LINK_OVERHEAD : rxMinimum;
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
        rxChains = new DescriptorChain[mergeable ? Math.min(MAX_RX_CHAINS, queue.size()) : 1];
        rxWritten = new int[rxChains.length];
        for (int i = 0; i < rxChains.length; i++) {
            rxChains[i] = queue.newChain();
        }
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
        rxChains = new DescriptorChain[0];
        rxWritten = new int[0];
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
                    putIovec(txIovView, iov++, address(chain, i), chain.segmentLength(i));
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
        tap.writeFrames(queue, txIovAddress, txFirst, txCount, frames, txResult);
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

    /** Reads frames from the TAP into RX chains until the TAP is drained, the budget is spent or buffers run out. */
    void receive() {
        Virtqueue q = rx;
        if (q == null || !q.isEnabled()) {
            pause();
            return;
        }
        boolean delivered = false;
        for (int frames = 0; frames < RX_BUDGET; frames++) {
            int taken = gather(q);
            // no buffers: ask for a kick, then look once more in case the driver posted meanwhile
            if (taken == 0 && (!q.enableNotifications() || (taken = gather(q)) == 0)) {
                pause();
                break;
            }
            long n = tap.readv(queue, rxIovAddress, rxIovCount);
            if (n < 0) {
                q.unpop(taken);
                if (n != -TapNatives.EAGAIN) {
                    increment(RX_ERRORS, 1);
                }
                break;
            }
            delivered |= deliver(q, taken, n);
        }
        if (delivered) {
            q.signalUsed();
        }
    }

    /**
     * Pops RX chains until they hold {@link #rxTarget} bytes and lays their writable segments out as one
     * iovec array. Without MRG_RXBUF a frame must fit one chain (virtio 1.2 5.1.6.3.1), so one is taken.
     *
     * @return chains taken (0: none, or too little room to risk a read)
     */
    private int gather(Virtqueue q) {
        int limit = mergeable ? rxChains.length : 1;
        int taken = 0;
        int iov = 0;
        long room = 0;
        while (room < rxTarget && taken < limit) {
            DescriptorChain chain = rxChains[taken];
            if (!q.pop(chain)) {
                break;
            }
            int first = chain.readableSegments();
            int end = chain.segmentCount();
            if (iov + end - first > TapNatives.IOV_MAX) {
                q.unpop(1);
                break;
            }
            for (int i = first; i < end; i++) {
                putIovec(rxIovView, iov++, address(chain, i), chain.segmentLength(i));
            }
            room += chain.writableBytes();
            taken++;
        }
        if (taken > 0 && mergeable && room < rxMinimum) {
            q.unpop(taken);
            return 0;
        }
        rxIovCount = iov;
        rxRoom = room;
        return taken;
    }

    /**
     * Hands the frame just read ({@code n} bytes, header included) to the driver: the chains it filled go
     * to the used ring with their lengths, num_buffers says how many (5.1.6.4: 1 without MRG_RXBUF), and
     * the chains it did not need are put back.
     *
     * @return true if delivered; false if the frame was longer than the room (the TAP then truncates it,
     *         so it is dropped and every chain put back)
     */
    private boolean deliver(Virtqueue q, int taken, long n) {
        if (n > rxRoom || n < headerLength) {
            q.unpop(taken);
            increment(n > rxRoom ? RX_DROPPED_TRUNCATED : RX_ERRORS, 1);
            return false;
        }
        int used = 0;
        long left = n;
        while (left > 0) {
            int len = (int) Math.min(left, rxChains[used].writableBytes());
            rxWritten[used++] = len;
            left -= len;
        }
        if (headerLength == VirtioNet.HDR_LEN) {
            // the TAP writes only the 10-byte struct virtio_net_hdr and skips the rest of the 12 bytes
            // (tun_put_user), so num_buffers is ours to set, little-endian (VERSION_1)
            numBuffers[0] = (byte) used;
            numBuffers[1] = (byte) (used >>> 8);
            rxChains[0].write(VirtioNet.HDR_NUM_BUFFERS, numBuffers, 0, 2);
        }
        for (int i = 0; i < used; i++) {
            q.addUsed(rxChains[i], rxWritten[i]);
        }
        if (taken > used) {
            q.unpop(taken - used);
        }
        increment(RX_FRAMES, 1);
        increment(RX_BYTES, n - headerLength);
        return true;
    }

    private void pause() {
        if (!paused && watch != null) {
            paused = true;
            increment(RX_NO_BUFFER, 1);
            watch.pause();
        }
    }

    // ---- helpers -------------------------------------------------------------------------------

    private static void putIovec(ByteBuffer iov, int i, long address, int length) {
        iov.putLong(i * TapNatives.IOVEC_SIZE, address);
        iov.putLong(i * TapNatives.IOVEC_SIZE + 8, length & 0xffffffffL);
    }

    /**
     * The segment's native address. Guest memory mapped by the host gives it directly; memory that is not
     * natively mapped but lives in direct buffers (the test kit's fakes) is resolved through the window,
     * cached so a run of segments in one window costs one lookup.
     */
    private long address(DescriptorChain chain, int i) {
        long address = chain.segmentAddress(i);
        if (address != 0) {
            return address;
        }
        ByteBuffer window = chain.segmentBuffer(i);
        if (window != lastWindow) {
            Pointer base = window.isDirect() ? Native.getDirectBufferPointer(window) : null;
            if (base == null) {
                throw new IllegalStateException(name + ": chain head " + chain.head()
                        + ": guest memory is neither natively mapped nor in a direct buffer; readv/writev need addresses");
            }
            lastWindow = window;
            lastWindowAddress = Pointer.nativeValue(base);
        }
        return lastWindowAddress + chain.segmentOffset(i);
    }

    private void increment(int slot, long by) {
        counters.setRelease(slot, counters.getPlain(slot) + by);
    }

    long counter(int slot) {
        return counters.getAcquire(slot);
    }

    /** Every counter, in {@link #COUNTER_NAMES} order (a hot upgrade's state). */
    long[] counters() {
        long[] v = new long[COUNTER_NAMES.length];
        for (int i = 0; i < v.length; i++) {
            v[i] = counter(i);
        }
        return v;
    }

    /** A hot upgrade: the counters go on from the previous process's {@code values} (those it had). Before any queue runs. */
    void restoreCounters(long[] values) {
        for (int i = 0; i < Math.min(values.length, COUNTER_NAMES.length); i++) {
            counters.setRelease(i, values[i]);
        }
    }

    boolean isPaused() {
        return paused;
    }
}
