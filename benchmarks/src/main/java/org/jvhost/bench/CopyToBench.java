package org.jvhost.bench;

import java.util.concurrent.TimeUnit;
import org.jvhost.engine.virtq.SplitQueue;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.testkit.CountingNotifier;
import org.jvhost.testkit.MockSplitQueue;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * {@link DescriptorChain#copyTo} between two chains popped from a split queue over memfd-mapped guest
 * memory: the one memory-to-memory copy a loopback or switch device does per frame.
 *
 * <p>Shapes: {@code 64} and {@code 1500} copy one readable descriptor into one writable descriptor;
 * {@code 1500x3} copies three readable descriptors of 500 bytes into writable descriptors of 700, 400
 * and 400 bytes, so segment boundaries do not line up and the copy is five pieces (the segment walk of
 * both chains is what this shape adds).
 *
 * <p>Excludes popping the chains (done once in setup), the ring, and cache misses: the same few KiB are
 * copied every time, so source and destination stay in L1/L2. A real guest's buffers are usually cold
 * in the host's cache, which costs more for 1500 bytes than this shows.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@State(Scope.Thread)
public class CopyToBench {
    private static final long MEMORY = 1L << 20;

    @Param({"64", "1500", "1500x3"})
    public String shape;

    private MemfdGuest guest;
    private DescriptorChain src;
    private DescriptorChain dst;
    private int length;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        guest = MemfdGuest.create("bench-copy-to", MEMORY);
        MockSplitQueue driver = MockSplitQueue.create(guest.memory(), 16, MemfdGuest.GPA, MEMORY);
        SplitQueue queue = driver.deviceQueue(0, new CountingNotifier());
        int[] readable;
        int[] writable;
        switch (shape) {
            case "64": readable = new int[] {64}; writable = new int[] {64}; break;
            case "1500": readable = new int[] {1500}; writable = new int[] {1500}; break;
            case "1500x3": readable = new int[] {500, 500, 500}; writable = new int[] {700, 400, 400}; break;
            default: throw new IllegalArgumentException("unknown shape " + shape);
        }
        byte[][] bytes = new byte[readable.length][];
        for (int i = 0; i < readable.length; i++) {
            bytes[i] = new byte[readable[i]];
            for (int j = 0; j < bytes[i].length; j++) {
                bytes[i][j] = (byte) (31 * i + j);
            }
        }
        driver.addChain(bytes, new int[0]);
        driver.addChain(new byte[0][], writable);
        src = queue.newChain();
        dst = queue.newChain();
        if (!queue.pop(src) || !queue.pop(dst)) {
            throw new IllegalStateException("setup: could not pop the two chains: " + queue.brokenReason());
        }
        length = src.readableBytes();
        if (src.segmentCount() != readable.length || dst.writableBytes() != length || src.segmentAddress(0) == 0) {
            throw new IllegalStateException("setup: unexpected chain shape");
        }
    }

    @Benchmark
    public int copyTo() {
        return src.copyTo(0, dst, 0, length);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        byte[] a = new byte[length];
        byte[] b = new byte[length];
        src.read(0, a, 0, length);
        int n = 0;
        for (int i = dst.readableSegments(); i < dst.segmentCount(); i++) {
            int len = dst.segmentLength(i);
            dst.segmentView(i).get(0, b, n, len);
            n += len;
        }
        guest.close();
        if (!java.util.Arrays.equals(a, b)) {
            throw new IllegalStateException("copyTo produced different bytes");
        }
    }
}
