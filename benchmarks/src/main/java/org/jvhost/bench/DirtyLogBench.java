package org.jvhost.bench;

import java.util.concurrent.TimeUnit;
import org.jvhost.engine.memory.DirtyLog;
import org.jvhost.engine.virtq.RingLog;
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
 * What dirty-page logging (live migration, VHOST_F_LOG_ALL) adds to the receive direction of a split
 * virtqueue, per chain: the device writes {@code bufferBytes} into each of {@value #BATCH} device-writable
 * single-descriptor chains over memfd guest memory and returns them with that used length; with
 * {@code logging=on} the queue marks those pages and the used ring's in a shared log (batched per
 * 64-page word, one atomic OR each at the used-index publish). {@code logging=off} is the ordinary path,
 * to show that logging costs nothing while it is off.
 *
 * <p>Excludes the front-end's side of the log (clearing and reading bits) and cross-core traffic on
 * the log's cache lines.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@State(Scope.Thread)
public class DirtyLogBench {
    static final int BATCH = 32;
    private static final int RING = 256;
    private static final long MEMORY = 4L << 20;

    @Param({"64", "1500"})
    public int bufferBytes;

    @Param({"off", "on"})
    public String logging;

    private MemfdGuest guest;
    private RingDriver driver;
    private SplitQueue queue;
    private DescriptorChain chain;
    private DirtyLog log;
    private byte[] frame;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        guest = MemfdGuest.create("bench-dirty-log", MEMORY);
        driver = new RingDriver(guest.memory(), RING, MemfdGuest.GPA, MEMORY, bufferBytes, true);
        queue = driver.deviceQueue(0, VirtioFeatures.VERSION_1 | VirtioFeatures.RING_EVENT_IDX, new CountingNotifier());
        chain = queue.newChain();
        frame = new byte[bufferBytes];
        if ("on".equals(logging)) {
            log = MemfdGuest.sharedLog(MemfdGuest.GPA + MEMORY);
            queue.setLog(new RingLog(log, driver.usedGpa()));
        }
        driver.reclaim(bufferBytes);
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public int receive() {
        driver.post(BATCH);
        int served = 0;
        do {
            queue.disableNotifications();
            while (queue.pop(chain)) {
                queue.addUsed(chain, chain.write(0, frame, 0, frame.length));
                served++;
            }
            queue.signalUsed();
        } while (queue.enableNotifications());
        if (driver.reclaim(bufferBytes) != BATCH || served != BATCH) {
            throw new IllegalStateException("served " + served + " of " + BATCH);
        }
        return served;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        queue.setLog(null);
        if (log != null) {
            log.unmap();
        }
        guest.close();
    }
}
