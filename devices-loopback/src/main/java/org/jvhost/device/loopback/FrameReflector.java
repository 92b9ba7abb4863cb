package org.jvhost.device.loopback;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.AtomicLongArray;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.spi.Virtqueue;
import org.jvhost.spi.virtio.VirtioNet;

/**
 * The loopback data path for one queue pair: moves one transmitted frame (a TX descriptor chain) into
 * the receive queue's buffers with the Ethernet source and destination addresses swapped. It knows
 * nothing of sockets or the protocol, so a test can drive it with any {@link Virtqueue}.
 *
 * <pre>
 * TX chain (readable):  | virtio_net_hdr (consumed) | dst mac | src mac | rest of frame ...        |
 * RX chain(s) (writable): | hdr: zero, num_buffers | src mac | dst mac | rest of frame ... (1 copy) |
 * </pre>
 *
 * <p>Frames are never queued: if the receive queue is not running or has too few buffers the frame is
 * dropped and counted, so a slow receiver never stalls the transmitter (a NIC drops on a full RX ring
 * the same way). Per frame it allocates nothing and throws nothing; the only allocation after
 * {@link #attachRx} is the RX chain pool growing (doubling, at most to the ring size) the first time a
 * frame needs more mergeable buffers than any frame before it.
 *
 * <p>Used on the queue pair's worker thread only; the counters may be read from any thread, as of the
 * worker's last {@link #publishCounters}.
 */
public final class FrameReflector {

    /** What {@link #reflect} did with a frame. */
    public static final int DELIVERED = 0;
    public static final int DROPPED_NO_BUFFER = 1;
    public static final int DROPPED_MALFORMED = 2;

    /** Most frames of a run of {@link #reflect(DescriptorChain[], int)}: the device's batch. */
    static final int BURST = 32;
    /** The two MAC addresses at the start of an Ethernet frame. */
    private static final int MAC_PAIR_LEN = 12;
    /** Shortest frame accepted: destination, source and EtherType. */
    static final int MIN_FRAME = 14;
    /** Longest frame accepted: the most a 16-bit IP total length plus a link header can need. */
    static final int MAX_FRAME = 65535;

    /**
     * Counter slots, in the order {@link #COUNTER_NAMES} lists them. Bytes are frame bytes, without the
     * virtio-net header. tx_* count every well-formed frame the driver sent (delivered or dropped);
     * rx_* count frames delivered; rx_dropped_no_buffer counts frames lost because RX was stopped,
     * disabled or short of buffers; tx_dropped_malformed counts TX chains shorter than header plus 14
     * bytes or longer than header plus 65535 (returned to the driver, never delivered).
     */
    static final int TX_FRAMES = 0, TX_BYTES = 1, RX_FRAMES = 2, RX_BYTES = 3,
            RX_DROPPED_NO_BUFFER = 4, TX_DROPPED_MALFORMED = 5;
    static final String[] COUNTER_NAMES = {
        "tx_frames", "tx_bytes", "rx_frames", "rx_bytes", "rx_dropped_no_buffer", "tx_dropped_malformed"};

    /** The RX header: all zero but num_buffers (bytes 10-11), which is rewritten for every frame. */
    private final byte[] header = new byte[VirtioNet.HDR_LEN];
    private final byte[] macs = new byte[MAC_PAIR_LEN];
    /** Single writer (the worker), any reader: release stores, no locks; once per batch (publishCounters). */
    private final AtomicLongArray counters = new AtomicLongArray(COUNTER_NAMES.length);
    /** What this batch adds to {@link #counters}; worker only. */
    private final long[] pending = new long[COUNTER_NAMES.length];

    private int headerLength = VirtioNet.HDR_LEN;
    private boolean mergeable;

    private Virtqueue rx;
    private DescriptorChain[] rxChains = new DescriptorChain[0];
    /** One RX chain per frame of a run ({@link #reflect(DescriptorChain[], int)}). */
    private DescriptorChain[] burstRx = new DescriptorChain[0];
    private int[] rxWritten = new int[0];

    /** Cursor of the scatter into the taken RX chains. */
    private int cursorChain;
    private int cursorOffset;

    /** Adopts the negotiated features: header length, and whether a frame may span RX buffers. */
    public void setFeatures(long ackedFeatures) {
        headerLength = VirtioNet.headerLength(ackedFeatures);
        mergeable = VirtioFeatures.has(ackedFeatures, VirtioNet.F_MRG_RXBUF);
    }

    /** Starts delivering into {@code queue}; allocates its chain pool. */
    public void attachRx(Virtqueue queue) {
        rx = queue;
        rxChains = new DescriptorChain[mergeable ? Math.min(8, queue.size()) : 1];
        rxWritten = new int[rxChains.length];
        for (int i = 0; i < rxChains.length; i++) {
            rxChains[i] = queue.newChain();
        }
        burstRx = new DescriptorChain[Math.min(BURST, queue.size())];
        for (int i = 0; i < burstRx.length; i++) {
            burstRx[i] = queue.newChain();
        }
    }

    /** Stops delivering; frames are dropped until the next {@link #attachRx}. */
    public void detachRx() {
        rx = null;
        rxChains = new DescriptorChain[0];
        rxWritten = new int[0];
        burstRx = new DescriptorChain[0];
    }

    /**
     * Reflects the frame in {@code tx} into the RX queue. Does not return the TX chain to its queue:
     * that is the caller's job whatever the outcome. RX chains are added to the used ring but not
     * published; the caller signals RX once per batch, and calls {@link #publishCounters} before it.
     *
     * @return {@link #DELIVERED}, {@link #DROPPED_NO_BUFFER} or {@link #DROPPED_MALFORMED}
     */
    @SuppressWarnings("deprecation") // segmentBuffer: see writeWhole
    public int reflect(DescriptorChain tx) {
        int frameLength = tx.readableBytes() - headerLength;
        if (frameLength < MIN_FRAME || frameLength > MAX_FRAME) {
            pending[TX_DROPPED_MALFORMED]++;
            return DROPPED_MALFORMED;
        }
        pending[TX_FRAMES]++;
        pending[TX_BYTES] += frameLength;
        int buffers = rx == null || !rx.isEnabled() ? 0 : takeRxBuffers(headerLength + frameLength);
        if (buffers == 0) {
            pending[RX_DROPPED_NO_BUFFER]++;
            return DROPPED_NO_BUFFER;
        }
        if (buffers == 1 && headerLength == VirtioNet.HDR_LEN && frameInLastSegment(tx, frameLength)
                && fitsWhole(rxChains[0], frameLength, tx.segmentBuffer(tx.readableSegments() - 1))) {
            writeWhole(tx, rxChains[0], frameLength);
            rx.addUsed(rxChains[0], headerLength + frameLength);
        } else {
            writeFrame(tx, frameLength, buffers);
            for (int i = 0; i < buffers; i++) {
                rx.addUsed(rxChains[i], rxWritten[i]);
            }
        }
        pending[RX_FRAMES]++;
        pending[RX_BYTES] += frameLength;
        return DELIVERED;
    }

    /**
     * Makes the counts of the frames reflected since the last call visible to other threads (release
     * stores). The caller calls it once per batch, before it publishes the batch's used entries: a
     * counter is then never behind what the driver can see, and the per-frame path makes no store that
     * another thread reads.
     */
    public void publishCounters() {
        for (int slot = 0; slot < pending.length; slot++) {
            if (pending[slot] != 0) {
                counters.setRelease(slot, counters.getPlain(slot) + pending[slot]);
                pending[slot] = 0;
            }
        }
    }

    /**
     * Reflects the frames {@code tx[0..n)} in order, in phases over runs of frames that each fit one RX
     * buffer whole ({@link #writeWhole}), as DPDK's vhost works over a burst: first the RX buffers of the
     * whole run are popped (their avail entries and descriptors read and checked), then each frame's
     * header and MACs are written ({@link #writeHead}: the first touch of the lines a frame reads and
     * writes), then the rest of each frame ({@link #writeRest}, on lines now in this CPU's cache), then the
     * RX used entries added. The accesses of one phase do not depend on each other, so their misses (lines
     * the driver wrote or read on its CPU) can overlap, where one frame at a time waits for them in turn:
     * a bulk copy is long enough that the CPU cannot look past it to the next frame's lines. That matters
     * most when the host places the two vCPUs far apart (BENCHMARKS.md, issue 11, ninth session).
     * Any other frame goes through {@link #reflect(DescriptorChain)} on its own, in its place.
     * Like that method, it returns no TX chain to its queue.
     *
     * @return whether any frame was delivered (RX then has used entries to publish)
     */
    public boolean reflect(DescriptorChain[] tx, int n) {
        boolean delivered = false;
        int i = 0;
        while (i < n) {
            int run = takeRun(tx, i, Math.min(n - i, burstRx.length));
            if (run == 0) {
                delivered |= reflect(tx[i++]) == DELIVERED;
                continue;
            }
            for (int k = 0; k < run; k++) {
                writeHead(tx[i + k], burstRx[k], tx[i + k].readableBytes() - VirtioNet.HDR_LEN);
            }
            long bytes = 0;
            for (int k = 0; k < run; k++) {
                int frameLength = tx[i + k].readableBytes() - VirtioNet.HDR_LEN;
                writeRest(tx[i + k], burstRx[k], frameLength);
                bytes += frameLength;
            }
            for (int k = 0; k < run; k++) {
                rx.addUsed(burstRx[k], tx[i + k].readableBytes()); // header and frame
            }
            pending[TX_FRAMES] += run;
            pending[TX_BYTES] += bytes;
            pending[RX_FRAMES] += run;
            pending[RX_BYTES] += bytes;
            delivered = true;
            i += run;
        }
        return delivered;
    }

    /**
     * Phase one of a run: pops an RX buffer for each frame from {@code tx[from]} on, at most {@code max},
     * while the frame can be written whole into it. The buffer of the frame that ends the run is put
     * back, for the frame's own path.
     *
     * @return the run's length
     */
    @SuppressWarnings("deprecation") // segmentBuffer: see writeWhole
    private int takeRun(DescriptorChain[] tx, int from, int max) {
        if (rx == null || headerLength != VirtioNet.HDR_LEN || !rx.isEnabled()) {
            return 0;
        }
        int k = 0;
        while (k < max) {
            DescriptorChain t = tx[from + k];
            int frameLength = t.readableBytes() - VirtioNet.HDR_LEN;
            if (frameLength < MIN_FRAME || frameLength > MAX_FRAME || !frameInLastSegment(t, frameLength)
                    || !rx.pop(burstRx[k])) {
                break;
            }
            if (!fitsWhole(burstRx[k], frameLength, t.segmentBuffer(t.readableSegments() - 1))) {
                rx.unpop(1);
                break;
            }
            k++;
        }
        return k;
    }

    /**
     * The common case in one pass: {@link #frameInLastSegment} and {@link #fitsWhole} hold, so the header,
     * the frame from its thirteenth byte on (one bulk copy) and the swapped MACs are written straight into
     * guest memory.
     *
     * <pre>
     * TX segment:  ... | dst mac (6) | src mac (6) | rest (frameLength - 12) |
     *                       \   /        bulk copy   |
     * RX segment:  | hdr (12) | src mac | dst mac | rest                    |
     * </pre>
     *
     * <p>It works on the segments' windows (the SPI 1.0 accessors, deprecated in 1.7) with absolute get/put
     * only: one ByteBuffer-to-ByteBuffer copy and four moves, where the 1.7 field accessors and copyTo
     * would walk the segment lists nine times per frame on the host's hottest 64 B path. Moving it onto
     * them waits for a measurement that shows they cost nothing here.
     */
    private static void writeWhole(DescriptorChain tx, DescriptorChain rx0, int frameLength) {
        writeHead(tx, rx0, frameLength);
        writeRest(tx, rx0, frameLength);
    }

    /**
     * The header and the swapped MACs of {@link #writeWhole}: loads the TX frame's first line and the RX
     * header, and stores into the RX frame's first line, with few instructions between one frame's
     * accesses and the next's.
     */
    @SuppressWarnings("deprecation")
    private static void writeHead(DescriptorChain tx, DescriptorChain rx0, int frameLength) {
        int txSeg = tx.readableSegments() - 1;
        ByteBuffer src = tx.segmentBuffer(txSeg);
        int s = tx.segmentOffset(txSeg) + tx.segmentLength(txSeg) - frameLength;
        int rxSeg = rx0.readableSegments();
        ByteBuffer dst = rx0.segmentBuffer(rxSeg);
        int d = rx0.segmentOffset(rxSeg);
        putHeader(dst, d);
        d += VirtioNet.HDR_LEN;
        dst.putInt(d, src.getInt(s + 6));
        dst.putShort(d + 4, src.getShort(s + 10));
        dst.putInt(d + 6, src.getInt(s));
        dst.putShort(d + 10, src.getShort(s + 4));
    }

    /** The frame from its thirteenth byte on, in one bulk copy (after {@link #writeHead}). */
    @SuppressWarnings("deprecation")
    private static void writeRest(DescriptorChain tx, DescriptorChain rx0, int frameLength) {
        int txSeg = tx.readableSegments() - 1;
        ByteBuffer src = tx.segmentBuffer(txSeg);
        int s = tx.segmentOffset(txSeg) + tx.segmentLength(txSeg) - frameLength;
        int rxSeg = rx0.readableSegments();
        int d = rx0.segmentOffset(rxSeg) + VirtioNet.HDR_LEN;
        rx0.segmentBuffer(rxSeg).put(d + MAC_PAIR_LEN, src, s + MAC_PAIR_LEN, frameLength - MAC_PAIR_LEN);
    }

    /**
     * The RX header of {@link #writeWhole} (all zero but num_buffers = 1, little-endian as VERSION_1 has
     * it, in the buffer's order), each of its two words stored only if the buffer does not hold it
     * already, as DPDK's vhost stores header fields (ASSIGN_UNLESS_EQUAL, "to lessen cache issues"). A
     * buffer the driver reposts usually does: virtio_user's transmit reads the header of the mbuf it
     * sends and writes only fields that differ, and its receive does not write it either. A store takes
     * the line from the front-end's cache and the front-end's next read of it takes it back, once per
     * frame each way; a load leaves the line shared in both caches.
     */
    private static void putHeader(ByteBuffer dst, int d) {
        int numBuffersOne = dst.order() == ByteOrder.LITTLE_ENDIAN ? 1 << 16 : 1 << 8; // bytes 8-11
        if (dst.getLong(d) != 0) {
            dst.putLong(d, 0);
        }
        if (dst.getInt(d + 8) != numBuffersOne) {
            dst.putInt(d + 8, numBuffersOne);
        }
    }

    /** Whether the frame (the last {@code frameLength} readable bytes) lies in the last readable segment. */
    private static boolean frameInLastSegment(DescriptorChain tx, int frameLength) {
        return tx.segmentLength(tx.readableSegments() - 1) >= frameLength;
    }

    /**
     * Whether {@code rx0}'s first writable segment holds the 12-byte header and the frame, in the byte
     * order of {@code src} (the int/short moves of {@link #writeWhole} assume one order on both sides).
     */
    @SuppressWarnings("deprecation") // segmentBuffer: see writeWhole
    private static boolean fitsWhole(DescriptorChain rx0, int frameLength, ByteBuffer src) {
        int rxSeg = rx0.readableSegments();
        return rxSeg < rx0.segmentCount() && rx0.segmentLength(rxSeg) >= VirtioNet.HDR_LEN + frameLength
                && rx0.segmentBuffer(rxSeg).order() == src.order();
    }

    /**
     * Pops RX chains until they hold {@code needed} bytes. Without MRG_RXBUF the frame must fit one chain
     * (virtio 1.2 5.1.6.3.1: the driver then posts buffers large enough for a whole frame). If the
     * chains run out first, every chain taken is put back for a later, smaller frame.
     *
     * @return chains taken, or 0 if the frame does not fit
     */
    private int takeRxBuffers(int needed) {
        int limit = mergeable ? rx.size() : 1;
        int taken = 0;
        long room = 0;
        while (room < needed && taken < limit) {
            DescriptorChain chain = rxChain(taken);
            if (!rx.pop(chain)) {
                break;
            }
            room += chain.writableBytes();
            taken++;
        }
        if (room < needed) {
            rx.unpop(taken);
            return 0;
        }
        return taken;
    }

    /** Pool slot {@code i}, growing the pool (doubling) the first time a frame needs that many buffers. */
    private DescriptorChain rxChain(int i) {
        if (i == rxChains.length) {
            int grown = Math.min(rxChains.length * 2, rx.size());
            DescriptorChain[] chains = java.util.Arrays.copyOf(rxChains, grown);
            for (int j = i; j < grown; j++) {
                chains[j] = rx.newChain();
            }
            rxChains = chains;
            rxWritten = new int[grown];
        }
        return rxChains[i];
    }

    /**
     * Any other layout (a frame over several RX buffers, or split across TX segments): header, swapped
     * MACs, then the rest of the frame in one chain-to-chain copy, scattered over the taken chains. The header may itself straddle two chains if the driver posted buffers smaller
     * than it (which 5.1.6.3.1 forbids, but must not make us write out of bounds).
     */
    private void writeFrame(DescriptorChain tx, int frameLength, int buffers) {
        cursorChain = 0;
        cursorOffset = 0;
        java.util.Arrays.fill(rxWritten, 0, buffers, 0);
        // num_buffers, little-endian (VERSION_1); 1 without MRG_RXBUF, as 5.1.6.4 requires. The legacy
        // 10-byte header has no such field.
        header[VirtioNet.HDR_NUM_BUFFERS] = (byte) buffers;
        header[VirtioNet.HDR_NUM_BUFFERS + 1] = (byte) (buffers >>> 8);
        scatter(header, headerLength, buffers);
        tx.read(headerLength, macs, 0, MAC_PAIR_LEN);
        for (int i = 0; i < 6; i++) {
            byte destination = macs[i];
            macs[i] = macs[i + 6];
            macs[i + 6] = destination;
        }
        scatter(macs, MAC_PAIR_LEN, buffers);
        scatterFrom(tx, headerLength + MAC_PAIR_LEN, frameLength - MAC_PAIR_LEN, buffers);
    }

    private void scatter(byte[] src, int len, int buffers) {
        int done = 0;
        while (done < len && cursorChain < buffers) {
            int n = rxChains[cursorChain].write(cursorOffset, src, done, len - done);
            done += n;
            advance(n);
        }
    }

    private void scatterFrom(DescriptorChain tx, int txOffset, int len, int buffers) {
        int done = 0;
        while (done < len && cursorChain < buffers) {
            int n = tx.copyTo(txOffset + done, rxChains[cursorChain], cursorOffset, len - done);
            done += n;
            advance(n);
        }
    }

    /** Moves the cursor {@code n} bytes on, to the next chain when this one is full. */
    private void advance(int n) {
        cursorOffset += n;
        rxWritten[cursorChain] = cursorOffset;
        if (cursorOffset >= rxChains[cursorChain].writableBytes() || n == 0) {
            cursorChain++;
            cursorOffset = 0;
        }
    }

    /** Sets a counter from a previous process's state (hot upgrade), before the pair's queues start. */
    void restoreCounter(int slot, long value) {
        counters.setRelease(slot, value);
    }

    /** Counter {@code slot} ({@link #TX_FRAMES}...). */
    long counter(int slot) {
        return counters.getAcquire(slot);
    }
}
