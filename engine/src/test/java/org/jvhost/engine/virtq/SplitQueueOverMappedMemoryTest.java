package org.jvhost.engine.virtq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.jvhost.engine.memory.GuestMemoryMap;
import org.jvhost.engine.memory.MappedRegion;
import org.jvhost.engine.memory.RegionSpec;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.testkit.CountingNotifier;
import org.jvhost.testkit.MockSplitQueue;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The production shape: rings and buffers in memfd-backed {@link MappedRegion}s behind a {@link GuestMemoryMap}. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class SplitQueueOverMappedMemoryTest {
    private static final long GPA = 0x4000_0000L;
    private static final long SIZE = 8L << 20;

    private MappedRegion region;
    private GuestMemoryMap memory;

    @BeforeEach
    void map() throws Exception {
        int fd = LinuxSys.memfdCreate("split-queue-mapped", LinuxSys.MFD_CLOEXEC | LinuxSys.MFD_ALLOW_SEALING);
        LinuxSys.truncate(fd, SIZE);
        region = MappedRegion.map(new RegionSpec(GPA, SIZE, 0x7f12_0000_0000L, 0), fd);
        memory = GuestMemoryMap.of(List.of(region));
    }

    @AfterEach
    void unmap() {
        region.unmap();
    }

    @Test
    void segmentsCarryNativeAddresses() {
        MockSplitQueue driver = MockSplitQueue.create(memory, 256, GPA, SIZE);
        SplitQueue q = driver.deviceQueue(0, new CountingNotifier());
        driver.addChain(new byte[][] {{9, 8, 7}}, new int[] {64});
        DescriptorChain c = q.newChain();
        assertTrue(q.pop(c));
        long gpa = driver.dataGpa();
        assertNotEquals(0, c.segmentAddress(0));
        assertEquals(region.nativeAddress() + (gpa - GPA), c.segmentAddress(0));
        assertEquals(7, c.segmentBuffer(0).get(c.segmentOffset(0) + 2));
    }

    @Test
    void steadyStateProcessingDoesNotAllocate() {
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long tid = Thread.currentThread().getId();
        int ring = 256;
        MockSplitQueue driver = MockSplitQueue.create(memory, ring, GPA, SIZE);
        CountingNotifier calls = new CountingNotifier();
        SplitQueue q = driver.deviceQueue(VirtioFeatures.RING_EVENT_IDX | VirtioFeatures.RING_INDIRECT_DESC, calls);
        DescriptorChain rx = q.newChain();
        DescriptorChain tx = q.newChain();
        byte[] frame = new byte[60];
        // Steady state means: once the JIT has compiled the loop, rounds allocate nothing. How soon that
        // happens depends on load (compilation runs in the background), so require a run of consecutive
        // allocation-free rounds within a generous bound instead of a fixed window.
        int cleanRun = 0;
        long lastAllocated = -1;
        for (int round = 0; round < 3000 && cleanRun < 50; round++) {
            for (int i = 0; i < ring / 2; i++) {
                driver.addChain(new byte[][] {frame}, new int[0]);
                driver.addIndirectChain(new byte[0][], new int[] {32, 32});
            }
            long before = threads.getThreadAllocatedBytes(tid);
            int served = serve(q, tx, rx);
            long after = threads.getThreadAllocatedBytes(tid);
            assertEquals(ring / 2, served);
            lastAllocated = after - before;
            cleanRun = lastAllocated == 0 ? cleanRun + 1 : 0;
            for (int i = 0; i < ring; i++) {
                driver.pollUsed();
            }
        }
        assertTrue(cleanRun >= 50, "pop/copyTo/addUsed/signalUsed never reached 50 allocation-free rounds; "
                + "the last round allocated " + lastAllocated + " bytes");
    }

    /** A loopback-shaped loop: copy each readable chain into the following writable one. */
    private static int serve(SplitQueue q, DescriptorChain tx, DescriptorChain rx) {
        int served = 0;
        do {
            q.disableNotifications();
            while (q.pop(tx) && q.pop(rx)) {
                int n = tx.copyTo(0, rx, 0, tx.readableBytes());
                q.addUsed(tx, 0);
                q.addUsed(rx, n);
                served++;
            }
            q.signalUsed();
        } while (q.enableNotifications());
        return served;
    }
}
