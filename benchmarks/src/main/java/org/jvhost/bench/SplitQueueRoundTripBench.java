package org.jvhost.bench;

import java.util.concurrent.TimeUnit;
import org.jvhost.engine.virtq.SplitQueue;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.VirtioFeatures;
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
 * One driver/device round trip of a split virtqueue, reported per chain.
 *
 * <p>Measures, per batch of {@value #BATCH} single-descriptor chains over memfd-mapped guest memory: the
 * driver writing 32 avail entries and one release store of avail->idx; the device's whole processing
 * loop from {@code Virtqueue}'s Javadoc (disableNotifications, pop with full validation, the per-chain
 * work, addUsed, signalUsed with its full fence and suppression check, enableNotifications with its
 * fence and avail re-read); one {@link CountingNotifier} signal; and the driver reading the used ring
 * back and setting used_event. {@code work=none} returns each chain untouched (ring overhead only);
 * {@code work=read} first copies the chain's readable bytes into a heap array, as a device handing data
 * to a Java consumer would.
 *
 * <p>Excludes: the kick (the eventfd read and the epoll wake-up that lead to the device loop), the real
 * call eventfd write (see {@link EventfdBench}), cross-core cache traffic (driver and device run on one
 * thread, so ring lines never bounce between CPUs as they do with a real guest), and indirect or
 * multi-descriptor chains.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@State(Scope.Thread)
public class SplitQueueRoundTripBench {
    static final int BATCH = 32;
    private static final int RING = 256;
    private static final long MEMORY = 4L << 20;

    /** Buffer size of every descriptor. */
    @Param({"64", "1500"})
    public int bufferBytes;

    /** Whether VIRTIO_F_RING_EVENT_IDX is negotiated (used_event/avail_event instead of the flags). */
    @Param({"true", "false"})
    public boolean eventIdx;

    /** What the device does with a chain between pop and addUsed: nothing, or read it all out. */
    @Param({"none", "read"})
    public String work;

    private MemfdGuest guest;
    private RingDriver driver;
    private SplitQueue queue;
    private DescriptorChain chain;
    private CountingNotifier calls;
    private byte[] sink;
    private boolean read;
    private long batches;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        guest = MemfdGuest.create("bench-split-queue", MEMORY);
        driver = new RingDriver(guest.memory(), RING, MemfdGuest.GPA, MEMORY, bufferBytes, false);
        calls = new CountingNotifier();
        long features = VirtioFeatures.VERSION_1 | (eventIdx ? VirtioFeatures.RING_EVENT_IDX : 0);
        queue = driver.deviceQueue(0, features, calls);
        chain = queue.newChain();
        sink = new byte[bufferBytes];
        read = "read".equals(work);
        driver.reclaim(0); // sets used_event to 0: notify on the first batch
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public int roundTrip() {
        driver.post(BATCH);
        int served = 0;
        int checksum = 0;
        do {
            queue.disableNotifications();
            while (queue.pop(chain)) {
                if (read) {
                    checksum += chain.read(0, sink, 0, chain.readableBytes());
                }
                queue.addUsed(chain, 0);
                served++;
            }
            queue.signalUsed();
        } while (queue.enableNotifications());
        int reclaimed = driver.reclaim(0);
        if (served != BATCH || reclaimed != BATCH) {
            throw new IllegalStateException("served " + served + ", reclaimed " + reclaimed + " of " + BATCH
                    + (queue.isBroken() ? ": " + queue.brokenReason() : ""));
        }
        batches++;
        return served + checksum + sink[0];
    }

    /** The driver asked for one notification per batch; fewer means the suppression logic misfired. */
    @TearDown(Level.Trial)
    public void tearDown() {
        try {
            if (calls.count() != batches) {
                throw new IllegalStateException(calls.count() + " calls for " + batches + " batches");
            }
        } finally {
            guest.close();
        }
    }
}
