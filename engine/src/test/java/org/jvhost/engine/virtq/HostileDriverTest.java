package org.jvhost.engine.virtq;

import static org.jvhost.engine.virtq.DescriptorLayout.F_INDIRECT;
import static org.jvhost.engine.virtq.DescriptorLayout.F_NEXT;
import static org.jvhost.engine.virtq.DescriptorLayout.F_WRITE;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.MemoryRegion;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.testkit.CountingNotifier;
import org.jvhost.testkit.FakeGuestMemory;
import org.jvhost.testkit.MockSplitQueue;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Every way a driver can break the ring rules: the queue must break (pop false from then on, a reason
 * naming the index or address, the error notifier signalled once) and leave guest memory untouched.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class HostileDriverTest {
    private static final long INDIRECT = VirtioFeatures.RING_INDIRECT_DESC;
    private static final int SIZE = 8;
    /** Guard region right after the driver's memory, and one far above it. */
    private static final long RING_BASE = 0x10000;
    private static final long GUARD_GPA = 0x4000_0000L;
    private static final int GUARD_SIZE = 0x2000;

    private FakeGuestMemory memory;
    private MockSplitQueue driver;
    private long buf;
    private long end;

    @BeforeEach
    void layout() {
        long area = MockSplitQueue.ringArea(SIZE) + 0x10000;
        memory = FakeGuestMemory.builder().region(RING_BASE, area).region(GUARD_GPA, GUARD_SIZE).build();
        driver = MockSplitQueue.create(memory, SIZE, RING_BASE, area);
        memory.fill(driver.dataGpa(), (int) driver.dataSize(), (byte) 0x5a);
        memory.fill(GUARD_GPA, GUARD_SIZE, (byte) 0xa5);
        buf = driver.dataGpa();
        end = RING_BASE + area;
    }

    /** Pops from the hostile ring and checks every consequence of breaking. */
    private void assertBreaks(long features, String... expected) {
        CountingNotifier calls = new CountingNotifier();
        CountingNotifier errors = new CountingNotifier();
        SplitQueue q = driver.deviceQueue(features, calls);
        q.setErrorNotifier(errors);
        byte[] before = memory.read(RING_BASE, (int) (end - RING_BASE));
        byte[] guardBefore = memory.read(GUARD_GPA, GUARD_SIZE);
        DescriptorChain c = q.newChain();

        assertFalse(q.pop(c), "pop must refuse the hostile chain");
        assertTrue(q.isBroken());
        String reason = q.brokenReason();
        assertTrue(reason.startsWith("queue 0: "), reason);
        for (String part : expected) {
            assertTrue(reason.contains(part), "reason '" + reason + "' should name " + part);
        }
        // Broken for good: nothing pops, nothing is published or signalled, memory stays as it was.
        driver.publish(0);
        assertFalse(q.pop(c));
        assertEquals(0, q.availableCount());
        q.addUsed(c, 0);
        q.publishUsed();
        assertFalse(q.signalUsed());
        q.disableNotifications();
        assertFalse(q.enableNotifications());
        assertEquals(0, calls.count());
        assertEquals(1, errors.count(), "SET_VRING_ERR fd signalled exactly once");
        assertEquals(reason, q.brokenReason(), "the first reason is kept");
        byte[] after = memory.read(RING_BASE, (int) (end - RING_BASE));
        after[(int) (driver.availGpa() - RING_BASE) + AvailRingLayout.IDX] = before[(int) (driver.availGpa() - RING_BASE) + AvailRingLayout.IDX];
        after[(int) (driver.availGpa() - RING_BASE) + AvailRingLayout.IDX + 1] = before[(int) (driver.availGpa() - RING_BASE) + AvailRingLayout.IDX + 1];
        int slot = (int) (driver.availGpa() - RING_BASE) + AvailRingLayout.entry((driver.availIdx() - 1) & (SIZE - 1));
        after[slot] = before[slot];
        after[slot + 1] = before[slot + 1];
        assertArrayEquals(before, after, "the device wrote guest memory after breaking");
        assertArrayEquals(guardBefore, memory.read(GUARD_GPA, GUARD_SIZE));
        assertEquals(0, driver.usedIdx());
    }

    @Test
    void availIndexJumpingPastTheRing() {
        driver.setAvailIdx(SIZE + 1);
        assertBreaks(0, "avail index 9", "ring size 8");
    }

    @Test
    void headOutsideTheTable() {
        driver.publish(SIZE);
        assertBreaks(0, "head 8");
    }

    @Test
    void nextOutsideTheTable() {
        driver.writeDescriptor(0, buf, 16, F_NEXT, SIZE + 3);
        driver.publish(0);
        assertBreaks(0, "descriptor 0", "next index 11");
    }

    @Test
    void descriptorLoop() {
        driver.writeDescriptor(0, buf, 16, F_NEXT, 1);
        driver.writeDescriptor(1, buf, 16, F_NEXT, 0);
        driver.publish(0);
        assertBreaks(0, "head 0", "longer than the ring size 8");
    }

    @Test
    void selfLoopOfZeroLengthDescriptors() {
        driver.writeDescriptor(3, buf, 0, F_NEXT, 3);
        driver.publish(3);
        assertBreaks(0, "head 3", "longer than the ring size");
    }

    @Test
    void chainLongerThanTheRingThroughAnIndirectTable() {
        long table = buf + 0x1000;
        for (int k = 0; k <= SIZE; k++) { // 9 buffer descriptors in the table > 8
            driver.writeDescriptorAt(table + 16L * k, buf, 4, k < SIZE ? F_NEXT : 0, k + 1);
        }
        driver.writeDescriptor(0, table, 16 * (SIZE + 1), F_INDIRECT, 0);
        driver.publish(0);
        assertBreaks(INDIRECT, "longer than the ring size 8");
    }

    /**
     * The descriptor pointing to an indirect table is not a buffer: a table of Queue Size entries is a
     * chain of Queue Size (Linux's largest virtio-blk request with seg_max = Queue Size - 2, which QEMU
     * and DPDK accept).
     */
    @Test
    void anIndirectTableOfTheRingSizeIsAChainOfTheRingSize() {
        long table = buf + 0x1000;
        for (int k = 0; k < SIZE; k++) {
            driver.writeDescriptorAt(table + 16L * k, buf + 4L * k, 4, k + 1 < SIZE ? F_NEXT : 0, k + 1);
        }
        driver.writeDescriptor(0, table, 16 * SIZE, F_INDIRECT, 0);
        driver.publish(0);
        SplitQueue q = driver.deviceQueue(INDIRECT, new CountingNotifier());
        DescriptorChain c = q.newChain();
        assertTrue(q.pop(c), q.brokenReason());
        assertEquals(SIZE, c.segmentCount());
        assertEquals(4 * SIZE, c.readableBytes());
    }

    @Test
    void bufferOutsideGuestMemory() {
        driver.writeDescriptor(0, 0x2000_0000L, 64, 0, 0);
        driver.publish(0);
        assertBreaks(0, "descriptor 0", "0x20000000");
    }

    @Test
    void bufferCrossingTheRegionEnd() {
        driver.writeDescriptor(0, end - 8, 9, F_WRITE, 0);
        driver.publish(0);
        assertBreaks(0, "0x" + Long.toHexString(end - 8), "+0x9");
    }

    @Test
    void bufferSpanningTwoRegionsIsRefusedEvenIfBothExist() {
        FakeGuestMemory adjacent = FakeGuestMemory.builder().region(RING_BASE, end - RING_BASE)
                .region(end, 0x1000).build();
        driver = new MockSplitQueue(adjacent, SIZE, driver.descGpa(), driver.availGpa(), driver.usedGpa(),
                driver.dataGpa(), driver.dataSize());
        memory = adjacent;
        driver.writeDescriptor(0, end - 8, 16, 0, 0);
        driver.publish(0);
        CountingNotifier calls = new CountingNotifier();
        SplitQueue q = driver.deviceQueue(0, calls);
        assertFalse(q.pop(q.newChain()));
        assertTrue(q.brokenReason().contains("not inside one guest memory region"), q.brokenReason());
    }

    @Test
    void bufferWrappingPastTwoToTheSixtyFour() {
        driver.writeDescriptor(0, -16L, 32, 0, 0);
        driver.publish(0);
        assertBreaks(0, "0xfffffffffffffff0");
    }

    @Test
    void lengthWithTheTopBitSetIsNotNegative() {
        driver.writeDescriptor(0, buf, 0x8000_0000, 0, 0);
        driver.publish(0);
        assertBreaks(0, "0x80000000");
    }

    @Test
    void readableAfterWritable() {
        driver.writeDescriptor(0, buf, 8, F_WRITE | F_NEXT, 1);
        driver.writeDescriptor(1, buf + 64, 8, 0, 0);
        driver.publish(0);
        assertBreaks(0, "descriptor 1", "device-readable descriptor after a device-writable one");
    }

    @Test
    void indirectWithoutNegotiation() {
        driver.writeDescriptor(0, buf, 32, F_INDIRECT, 0);
        driver.publish(0);
        assertBreaks(0, "descriptor 0", "INDIRECT");
    }

    @Test
    void indirectTableLengthNotAMultipleOfSixteen() {
        driver.writeDescriptor(0, buf, 24, F_INDIRECT, 0);
        driver.publish(0);
        assertBreaks(INDIRECT, "descriptor 0", "0x18");
    }

    @Test
    void indirectTableOfZeroLength() {
        driver.writeDescriptor(0, buf, 0, F_INDIRECT, 0);
        driver.publish(0);
        assertBreaks(INDIRECT, "indirect table length 0x0");
    }

    @Test
    void indirectTableOutsideMemory() {
        driver.writeDescriptor(0, end - 16, 32, F_INDIRECT, 0);
        driver.publish(0);
        assertBreaks(INDIRECT, "indirect table [0x" + Long.toHexString(end - 16));
    }

    @Test
    void nestedIndirectTable() {
        long table = buf + 0x100;
        driver.writeDescriptorAt(table, buf, 16, F_NEXT, 1);
        driver.writeDescriptorAt(table + 16, buf + 0x200, 16, F_INDIRECT, 0);
        driver.writeDescriptor(0, table, 32, F_INDIRECT, 0);
        driver.publish(0);
        assertBreaks(INDIRECT, "descriptor 1 of the indirect table at 0x" + Long.toHexString(table), "nested");
    }

    @Test
    void indirectTogetherWithNext() {
        driver.writeDescriptor(0, buf, 32, F_INDIRECT | F_NEXT, 1);
        driver.publish(0);
        assertBreaks(INDIRECT, "descriptor 0", "INDIRECT together with NEXT");
    }

    @Test
    void nextOutsideTheIndirectTable() {
        long table = buf + 0x100;
        driver.writeDescriptorAt(table, buf, 16, F_NEXT, 2);
        driver.writeDescriptorAt(table + 16, buf, 16, 0, 0);
        driver.writeDescriptor(0, table, 32, F_INDIRECT, 0);
        driver.publish(0);
        assertBreaks(INDIRECT, "indirect table at 0x" + Long.toHexString(table), "next index 2", "2 entries");
    }

    @Test
    void validChainsBeforeTheHostileOneAreServed() {
        CountingNotifier calls = new CountingNotifier();
        SplitQueue q = driver.deviceQueue(0, calls);
        driver.addChain(new byte[][] {{1, 2, 3}}, new int[0]);
        driver.publish(SIZE + 5);
        DescriptorChain c = q.newChain();
        assertTrue(q.pop(c));
        assertEquals(3, c.readableBytes());
        assertFalse(q.pop(c));
        assertTrue(q.brokenReason().contains("head 13"), q.brokenReason());
    }

    @Test
    void hugeDescriptorsAreRefusedWithoutTouchingASparseGigabyte() throws Exception {
        long gib = 1L << 30;
        int fd = LinuxSys.memfdCreate("hostile-huge", LinuxSys.MFD_CLOEXEC);
        long addr = 0;
        try {
            LinuxSys.truncate(fd, gib);
            addr = LinuxSys.mmap(gib, LinuxSys.PROT_READ | LinuxSys.PROT_WRITE, LinuxSys.MAP_SHARED, fd, 0);
            ByteBuffer big = LinuxSys.buffer(addr, gib);
            FakeGuestMemory m = FakeGuestMemory.builder().region(RING_BASE, 0x10000).region(gib, big).build();
            MockSplitQueue d = MockSplitQueue.create(m, SIZE, RING_BASE, 0x10000);

            // One descriptor longer than a window stride.
            d.writeDescriptor(0, gib, (int) (MemoryRegion.WINDOW_STRIDE + 1), 0, 0);
            d.publish(0);
            SplitQueue q = d.deviceQueue(0, new CountingNotifier());
            assertFalse(q.pop(q.newChain()));
            assertTrue(q.brokenReason().contains("0x20000001"), q.brokenReason());

            // 512 MiB readable descriptors over the same memory: the fourth makes 2 GiB > 2^31 - 1 bytes.
            MockSplitQueue d2 = MockSplitQueue.create(m, SIZE, RING_BASE, 0x10000);
            for (int k = 0; k < 5; k++) {
                d2.writeDescriptor(k, gib, (int) MemoryRegion.WINDOW_STRIDE, k < 4 ? F_NEXT : 0, k + 1);
            }
            d2.publish(0);
            SplitQueue q2 = d2.deviceQueue(0, new CountingNotifier());
            assertFalse(q2.pop(q2.newChain()));
            assertTrue(q2.brokenReason().contains("descriptor 3:") && q2.brokenReason().contains("2^31-1"),
                    q2.brokenReason());

            // Four of them (2 GiB - 4) are fine and resolve to windows of the big region.
            MockSplitQueue d3 = MockSplitQueue.create(m, SIZE, RING_BASE, 0x10000);
            for (int k = 0; k < 4; k++) {
                d3.writeDescriptor(k, gib + k, (int) MemoryRegion.WINDOW_STRIDE - 1, k < 3 ? F_NEXT : 0, k + 1);
            }
            d3.publish(0);
            SplitQueue q3 = d3.deviceQueue(0, new CountingNotifier());
            DescriptorChain c = q3.newChain();
            assertTrue(q3.pop(c), q3.brokenReason());
            assertEquals(4 * ((int) MemoryRegion.WINDOW_STRIDE - 1), c.readableBytes());
            assertNull(q3.brokenReason());
        } finally {
            if (addr != 0) {
                LinuxSys.munmap(addr, gib);
            }
            LinuxSys.closeQuietly(fd);
        }
    }
}
