package org.jvhost.bench;

import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.jvhost.device.net.BenchTap;
import org.jvhost.device.net.NetDevice;
import org.jvhost.engine.virtq.SplitQueue;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.spi.virtio.VirtioNet;
import org.jvhost.testkit.CountingNotifier;
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
 * The net device's per-frame work in Java, both directions, over a TAP that moves no bytes
 * ({@link BenchTap}: every read finds a frame, every write takes one, no system call), so that what is
 * left is the device's own: for RX ({@link #tapToGuest}) the readiness callback reading a burst of
 * {@value #RX_BURST} frames (the budget of one callback) in batches of 32, popping a chain per frame,
 * laying out its iovecs, writing the header's last byte and the frame's first before the read,
 * num_buffers and the used entry after it, one publish per batch and one signal per callback; for TX
 * ({@link #guestToTap}) a kick draining {@value #TX_BURST} chains: pop, iovecs, results counted, used
 * entries published per batch. Reported per frame. {@code -prof gc} shows whether either allocates.
 *
 * <p>Set-up as {@link LoopbackBench}: real {@link SplitQueue}s over memfd-mapped guest memory, ring 256,
 * VERSION_1 + MRG_RXBUF + EVENT_IDX, RX buffers of 2048 bytes (one per frame), each TX chain one
 * descriptor of header and frame. Excludes the kernel's side (the TAP's read and write, io_uring: see
 * BENCHMARKS.md's profiles, where they are 70-80% of a frame's cost) and cross-core cache traffic (the
 * driver runs on the same thread).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@State(Scope.Thread)
public class NetPathBench {
    static final int RX_BURST = 64;
    static final int TX_BURST = 32;
    private static final int RING = 256;
    private static final int RX_BUFFER = 2048;
    private static final long AREA = 8L << 20;
    private static final int RX = 0;
    private static final int TX = 1;

    /** Ethernet frame length, without the virtio-net header. */
    @Param({"64", "1500"})
    public int frameBytes;

    private MemfdGuest guest;
    private RingDriver rxDriver;
    private RingDriver txDriver;
    private SplitQueue rxQueue;
    private SplitQueue txQueue;
    private BenchTap tap;
    private NetDevice device;
    private int length;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        guest = MemfdGuest.create("bench-net", 2 * AREA);
        length = VirtioNet.HDR_LEN + frameBytes;
        rxDriver = new RingDriver(guest.memory(), RING, MemfdGuest.GPA, AREA, RX_BUFFER, true);
        txDriver = new RingDriver(guest.memory(), RING, MemfdGuest.GPA + AREA, AREA, length, false);
        tap = new BenchTap(length);
        device = tap.device("bench");
        long features = VirtioFeatures.VERSION_1 | VirtioFeatures.RING_EVENT_IDX | VirtioNet.F_MRG_RXBUF;
        device.ackFeatures(features);
        rxQueue = rxDriver.deviceQueue(RX, features, new CountingNotifier());
        txQueue = txDriver.deviceQueue(TX, features, new CountingNotifier());
        device.startQueue(RX, rxQueue);
        device.startQueue(TX, txQueue);
        rxDriver.reclaim(length);
        txDriver.reclaim(0);
        rxDriver.post(RING);
    }

    @Benchmark
    @OperationsPerInvocation(RX_BURST)
    public int tapToGuest() {
        tap.queue(RX_BURST);
        tap.readable();
        int received = rxDriver.reclaim(length);
        if (received != RX_BURST) {
            throw new IllegalStateException("received " + received + " of " + RX_BURST);
        }
        rxDriver.post(received);
        return received;
    }

    @Benchmark
    @OperationsPerInvocation(TX_BURST)
    public int guestToTap() {
        txDriver.post(TX_BURST);
        device.handleKick(TX);
        int sent = txDriver.reclaim(0);
        if (sent != TX_BURST) {
            throw new IllegalStateException("sent " + sent + " of " + TX_BURST);
        }
        return sent;
    }

    /** Nothing dropped, nothing malformed, no broken ring: otherwise the figures would mean nothing. */
    @TearDown(Level.Iteration)
    public void check() {
        Map<String, Long> counters = device.counters();
        if (rxQueue.isBroken() || txQueue.isBroken() || counters.get("tx_dropped") != 0
                || counters.get("tx_malformed") != 0 || counters.get("rx_errors") != 0
                || counters.get("rx_dropped_truncated") != 0) {
            throw new IllegalStateException("the net device lost frames: " + counters);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        device.stopQueue(TX);
        device.stopQueue(RX);
        guest.close();
    }
}
