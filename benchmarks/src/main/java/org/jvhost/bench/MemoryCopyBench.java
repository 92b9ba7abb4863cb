package org.jvhost.bench;

import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
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
 * The physical limit under the per-frame copy: one frame of {@code size} bytes copied from one memfd
 * mapping to another (two guests' RAM, or a TX buffer to an RX buffer), with the same bulk
 * {@code ByteBuffer.put(index, src, offset, length)} that {@code SplitDescriptorChain.copyTo} uses, and
 * nothing else: no ring, no descriptor, no validation. Bytes per nanosecond is GB/s.
 *
 * <p>Each call copies the next frame slot (slots are {@code size} rounded up to a cache line) of a
 * footprint that wraps: {@code hot} (16 KiB per side) stays in L1/L2, so it is the copy instruction's
 * own rate; {@code cold} (128 MiB per side, far beyond this machine's caches) makes every frame miss to
 * memory on both sides, the worst case of a guest buffer nobody touched lately. A loopback frame also
 * misses in between: the front-end wrote it on another CPU (see the cache-line round trip in
 * BENCHMARKS.md), which neither case includes.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@State(Scope.Thread)
public class MemoryCopyBench {
    private static final long HOT = 16 << 10;
    private static final long COLD = 128L << 20;

    @Param({"64", "1500"})
    public int size;

    @Param({"hot", "cold"})
    public String footprint;

    private MemfdGuest from;
    private MemfdGuest to;
    private ByteBuffer src;
    private ByteBuffer dst;
    private int slot;
    private int slots;
    private int next;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        long bytes = "hot".equals(footprint) ? HOT : COLD;
        from = MemfdGuest.create("bench-copy-from", bytes);
        to = MemfdGuest.create("bench-copy-to", bytes);
        src = from.memory().regionFor(MemfdGuest.GPA).window(0);
        dst = to.memory().regionFor(MemfdGuest.GPA).window(0);
        slot = (size + 63) & ~63;
        slots = (int) (bytes / slot);
        for (int i = 0; i < bytes; i += 4096) {
            src.put(i, (byte) i); // fault every page in before measuring
            dst.put(i, (byte) 0);
        }
    }

    @Benchmark
    public int copy() {
        int at = next * slot;
        dst.put(at, src, at, size);
        next = next + 1 == slots ? 0 : next + 1;
        return at;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        from.close();
        to.close();
    }
}
