package org.jvhost.bench;

import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.jvhost.device.loopback.LoopbackConfig;
import org.jvhost.device.loopback.LoopbackDevice;
import org.jvhost.engine.memory.DirtyLog;
import org.jvhost.engine.virtq.RingLog;
import org.jvhost.engine.virtq.HostQueue;
import org.jvhost.engine.virtq.SplitQueue;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.spi.virtio.VirtioNet;
import org.jvhost.testkit.CountingNotifier;
import org.jvhost.testkit.GuestAccess;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The loopback device's data path as the host drives it: the guest transmits a batch of {@value #BATCH}
 * frames and kicks, the host calls {@link LoopbackDevice#handleKick} for the TX queue, and the device
 * reflects every frame (MACs swapped, header rewritten) into the RX queue. Reported per frame.
 *
 * <p>Set-up: one queue pair of real {@link SplitQueue}s ({@code rings=packed}: {@link
 * org.jvhost.engine.virtq.PackedQueue}s, driven by {@link PackedRingDriver}) over memfd-mapped guest memory, ring size 256,
 * VERSION_1 + MRG_RXBUF + EVENT_IDX negotiated; each TX chain is one descriptor holding the 12-byte
 * virtio-net header and the frame; each RX buffer is one writable 2048-byte descriptor (enough for any
 * frame here, so one buffer per frame, num_buffers = 1). The RX ring is kept full: after every batch
 * the driver reclaims the used TX and RX elements (checking the RX length is header + frame) and posts
 * the RX buffers again.
 *
 * <p>Measures: TX pop, frame reflection (RX pop, header and MAC writes, one chain-to-chain copy of the
 * rest), RX and TX addUsed, one signalUsed per queue per batch (each signalling a
 * {@link CountingNotifier}), enableNotifications, plus the driver's own ring writes and reads, which are
 * a few ns per frame. Excludes the kick eventfd read, the epoll wake-up, the two call eventfd writes
 * per batch (see {@link EventfdBench}) and cross-core cache traffic: guest and device share one thread
 * here, so the frame bytes are warm in cache rather than written by another CPU.
 *
 * <p>{@code logging=on} runs the same with both rings logging dirty pages into a shared log, as during a
 * live migration (VHOST_F_LOG_ALL; the rings set up with VHOST_VRING_F_LOG): the RX buffers' pages and
 * both used rings' are marked, batched per ring and ORed in at each used-index publish. {@code off} is
 * the ordinary path, whose only logging cost is the queue's null test of its log.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@State(Scope.Thread)
public class LoopbackBench {
    static final int BATCH = 32;
    private static final int RING = 256;
    private static final int RX_BUFFER = 2048;
    private static final long AREA = 8L << 20;
    private static final int RX = 0;
    private static final int TX = 1;
    /**
     * Bytes the TX ring's area is moved by ({@code -Djvhost.bench.txShift=N}, a multiple of 64): the RX
     * and TX buffers of a frame then lie at other offsets within a 4 KiB page of each other (a placement
     * experiment, 0 by default).
     */
    private static final long TX_SHIFT = Long.getLong("jvhost.bench.txShift", 0);

    /** Ethernet frame length, without the virtio-net header. */
    @Param({"64", "1500"})
    public int frameBytes;

    @Param({"off", "on"})
    public String logging;

    /** The ring layout the driver negotiated: split, or packed (VIRTIO_F_RING_PACKED). */
    @Param({"split", "packed"})
    public String rings = "split";

    /**
     * Whether the driver acks VIRTIO_F_IN_ORDER, which the loopback device offers (DPDK's virtio_user
     * does, QEMU 7.2 does not): a TX batch then comes back as one used entry. Off unless asked for
     * ({@code -p inOrder=on}), so figures stay comparable with those recorded before it.
     */
    @Param({"off"})
    public String inOrder = "off";

    /**
     * Two threads only ({@link LoopbackTwoThreads}): "off" (every descriptor keeps its own compact
     * buffer, and the driver never touches frame bytes), or the cache size of an {@link MbufPool} the
     * drivers take their buffers from as testpmd's virtio_user does: RX buffers posted from the pool,
     * each received frame's header read and the same buffer sent back with a fresh header, freed to the
     * pool when its TX completes. testpmd's cache is 250.
     */
    public String pool = "off";

    /**
     * With a pool: whether the driver reads each received header and writes each sent one, as
     * virtio_user does ({@code -Djvhost.bench.feTouch=false}: it does not, an experiment).
     */
    private static final boolean FE_TOUCH = Boolean.parseBoolean(System.getProperty("jvhost.bench.feTouch", "true"));

    /** testpmd's --total-num-mbufs in bench-loopback.sh. */
    private static final int POOL_MBUFS = 16384;

    private MemfdGuest guest;
    private MbufPool mbufs;
    private long[] gotRx;
    private long[] gotTx;
    private long[] fresh;
    /** Received buffers waiting to go out (io forwarding), a FIFO of guest addresses. */
    private long[] backlog;
    private int backlogHead;
    private BenchRing rxDriver;
    private BenchRing txDriver;
    private HostQueue rxQueue;
    private HostQueue txQueue;
    private LoopbackDevice device;
    private int rxLength;
    private DirtyLog log;
    /** Two threads: frames the driver received and has not transmitted again yet. */
    private int txBacklog;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        boolean pooled = !"off".equals(pool);
        guest = MemfdGuest.create("bench-loopback", 2 * AREA + (pooled ? MbufPool.bytes(POOL_MBUFS) : 0));
        if (pooled) {
            mbufs = new MbufPool(guest.memory(), MemfdGuest.GPA + 2 * AREA, POOL_MBUFS, Integer.parseInt(pool));
            gotRx = new long[RING];
            gotTx = new long[RING];
            fresh = new long[RING];
            backlog = new long[2 * RING];
        }
        int txLength = VirtioNet.HDR_LEN + frameBytes;
        rxLength = txLength;
        boolean packed = "packed".equals(rings);
        rxDriver = packed ? new PackedRingDriver(guest.memory(), RING, MemfdGuest.GPA, AREA, RX_BUFFER, true)
                : new RingDriver(guest.memory(), RING, MemfdGuest.GPA, AREA, RX_BUFFER, true);
        long txArea = MemfdGuest.GPA + AREA + TX_SHIFT;
        txDriver = packed ? new PackedRingDriver(guest.memory(), RING, txArea, AREA - TX_SHIFT, txLength, false)
                : new RingDriver(guest.memory(), RING, txArea, AREA - TX_SHIFT, txLength, false);
        byte[] frame = frame(frameBytes);
        for (int i = 0; i < RING; i++) {
            GuestAccess.write(guest.memory(), txDriver.bufferGpa(i), frame);
        }
        byte[] mac = {0x02, 0, 0, 0, 0, 0x01};
        device = new LoopbackDevice("bench", new LoopbackConfig(mac, 1, true));
        long features = (VirtioFeatures.VERSION_1 | VirtioFeatures.RING_EVENT_IDX | device.features()
                | (packed ? VirtioFeatures.RING_PACKED : 0)) & ("on".equals(inOrder) ? -1L : ~VirtioFeatures.IN_ORDER);
        device.ackFeatures(features);
        rxQueue = rxDriver.deviceQueue(RX, features, new CountingNotifier());
        txQueue = txDriver.deviceQueue(TX, features, new CountingNotifier());
        if ("on".equals(logging)) {
            log = MemfdGuest.sharedLog(MemfdGuest.GPA + 2 * AREA);
            rxQueue.setLog(new RingLog(log, rxDriver.usedGpa()));
            txQueue.setLog(new RingLog(log, txDriver.usedGpa()));
        }
        device.startQueue(RX, rxQueue);
        device.startQueue(TX, txQueue);
        rxDriver.reclaim(rxLength); // used_event (off_wrap) at the start on both rings: a call for every batch
        txDriver.reclaim(0);
        if (mbufs != null) {
            mbufs.get(RING, fresh);
            rxDriver.post(RING, fresh, MbufPool.RX_LEN);
        } else {
            rxDriver.post(RING);
        }
    }

    /** Header (all zero: no offloads) followed by an IPv4-typed frame with distinct MACs. */
    private static byte[] frame(int frameBytes) {
        byte[] b = new byte[VirtioNet.HDR_LEN + frameBytes];
        int f = VirtioNet.HDR_LEN;
        for (int i = 0; i < 6; i++) {
            b[f + i] = (byte) (0x10 + i);      // destination
            b[f + 6 + i] = (byte) (0x20 + i);  // source
        }
        b[f + 12] = 0x08;
        for (int i = f + 14; i < b.length; i++) {
            b[i] = (byte) i;
        }
        return b;
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public int txToRx() {
        txDriver.post(BATCH);
        device.handleKick(TX);
        int sent = txDriver.reclaim(0);
        int received = rxDriver.reclaim(rxLength);
        if (sent != BATCH || received != BATCH) {
            throw new IllegalStateException("sent " + sent + ", received " + received + " of " + BATCH);
        }
        rxDriver.post(received);
        return received;
    }

    /**
     * Two threads ({@link LoopbackTwoThreads}): both drivers poll without notifications, the device polls
     * the TX ring as jvhost's worker does, and {@code frames} frames are sent to start the circulation
     * (testpmd's {@code start tx_first 4}: 128).
     */
    void startCirculating(int frames) {
        rxDriver.pollMode();
        txDriver.pollMode();
        txQueue.setHostPolling(true);
        if (mbufs == null) {
            txDriver.post(frames);
            return;
        }
        byte[] frame = frame(frameBytes);
        mbufs.get(frames, fresh);
        for (int k = 0; k < frames; k++) {
            mbufs.write(fresh[k], frame);
        }
        txDriver.post(frames, fresh, frame.length);
    }

    /**
     * The driver's side of one turn of testpmd's io forwarding: every frame received goes out again
     * (TX buffers permitting, at most {@value #BATCH} per turn), RX buffers are posted again at once.
     *
     * @return frames received this turn
     */
    int driverTurn() {
        if (mbufs != null) {
            return pooledDriverTurn();
        }
        int received = rxDriver.reclaim(rxLength);
        if (received > 0) {
            rxDriver.post(received);
            txBacklog += received;
        }
        txDriver.reclaim(0);
        int n = Math.min(txBacklog, Math.min(txDriver.freeCount(), BATCH));
        if (n > 0) {
            txDriver.post(n);
            txBacklog -= n;
        }
        return received;
    }

    /** {@link #driverTurn} with buffers from the {@link MbufPool}, as virtio_user's io forwarding. */
    private int pooledDriverTurn() {
        int received = rxDriver.reclaim(rxLength, gotRx);
        if (received > 0) {
            for (int k = 0; k < received; k++) {
                if (FE_TOUCH && mbufs.received(gotRx[k]) != 1) {
                    throw new IllegalStateException("received frame at 0x" + Long.toHexString(gotRx[k])
                            + " does not say num_buffers 1");
                }
                backlog[(backlogHead + txBacklog++) & (backlog.length - 1)] = gotRx[k];
            }
            mbufs.get(received, fresh);
            rxDriver.post(received, fresh, MbufPool.RX_LEN);
        }
        int completed = txDriver.reclaim(0, gotTx);
        for (int k = 0; k < completed; k++) {
            mbufs.put(gotTx[k]);
        }
        int n = Math.min(txBacklog, Math.min(txDriver.freeCount(), BATCH));
        for (int k = 0; k < n; k++) {
            long gpa = backlog[backlogHead];
            backlogHead = (backlogHead + 1) & (backlog.length - 1);
            if (FE_TOUCH) {
                mbufs.prependHeader(gpa);
            }
            fresh[k] = gpa;
        }
        if (n > 0) {
            txDriver.post(n, fresh, rxLength);
            txBacklog -= n;
        }
        return received;
    }

    /** The pool's cache traffic, or "" without a pool. */
    String poolTraffic() {
        return mbufs == null ? "" : "pool: " + mbufs.traffic();
    }

    /** The device's side: what jvhost's worker does when it polls the TX ring; true if it drained. */
    boolean deviceTurn() {
        if (txQueue.availIndex() == txQueue.nextAvail()) {
            return false;
        }
        device.handleKick(TX);
        return true;
    }

    /** Every frame must have been delivered; a drop or a broken ring would make the numbers meaningless. */
    @TearDown(Level.Iteration)
    public void check() {
        Map<String, Long> counters = device.counters();
        if (rxQueue.isBroken() || txQueue.isBroken() || counters.get("rx_dropped_no_buffer") != 0
                || counters.get("tx_dropped_malformed") != 0 || !counters.get("rx_frames").equals(counters.get("tx_frames"))) {
            throw new IllegalStateException("loopback did not deliver every frame: " + counters
                    + " rx " + rxQueue + " tx " + txQueue);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        byte[] rx = GuestAccess.read(guest.memory(), rxDriver.bufferGpa(0), rxLength);
        device.stopQueue(TX);
        device.stopQueue(RX);
        if (log != null) {
            rxQueue.setLog(null);
            txQueue.setLog(null);
            log.unmap();
        }
        guest.close();
        if (mbufs != null) {
            return; // buffer 0 was never posted; every frame's num_buffers was checked as it came back
        }
        // The last frame in buffer 0: source and destination swapped, num_buffers = 1.
        int f = VirtioNet.HDR_LEN;
        if (rx[f] != 0x20 || rx[f + 6] != 0x10 || rx[VirtioNet.HDR_NUM_BUFFERS] != 1) {
            throw new IllegalStateException("RX buffer 0 does not hold a reflected frame");
        }
    }
}
