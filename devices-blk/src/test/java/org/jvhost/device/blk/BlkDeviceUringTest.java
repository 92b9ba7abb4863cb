package org.jvhost.device.blk;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.jvhost.spi.Completion;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.virtio.VirtioBlk;
import org.jvhost.testkit.CountingNotifier;
import org.jvhost.testkit.MockSplitQueue;
import org.junit.jupiter.api.Test;

/**
 * Every {@link BlkDeviceTest} case again with reads, writes and flushes on io_uring ({@code uring=on}),
 * and the bound of {@link UringIo}: a request that finds every slot taken is not started there (the device
 * then runs it on its thread pool), and a slot is free again once its request completed.
 */
class BlkDeviceUringTest extends BlkDeviceTest {
    @Override
    String uring() {
        return "on";
    }

    @Test
    void aKicksRequestsGoTogetherAndAllLand() throws Exception {
        open();
        int n = 20; // three descriptors each: 60 of the ring's 64
        int before = driver.usedIdx();
        for (int i = 0; i < n; i++) {
            driver.addChain(new byte[][] {header(VirtioBlk.T_OUT, i), pattern(VirtioBlk.SECTOR_SIZE, i)}, new int[] {1});
        }
        device.handleKick(0);
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (driver.usedIdx() < before + n && System.nanoTime() < end) {
            queue.drainCompletions();
            Thread.sleep(1);
        }
        assertEquals(before + n, driver.usedIdx(), "every request of the kick completed");
        byte[] disk = Files.readAllBytes(file);
        for (int i = 0; i < n; i++) {
            assertEquals(VirtioBlk.S_OK, statusOf(driver.pollUsed()));
            assertArrayEquals(pattern(VirtioBlk.SECTOR_SIZE, i),
                    Arrays.copyOfRange(disk, i * VirtioBlk.SECTOR_SIZE, (i + 1) * VirtioBlk.SECTOR_SIZE));
        }
    }

    @Test
    void aFullRingRefusesTheNextRequestUntilOneCompletes() throws Exception {
        file = dir.resolve("bound.img");
        Files.write(file, pattern(8 * VirtioBlk.SECTOR_SIZE, 1));
        MockSplitQueue mock = MockSplitQueue.create(16); // room for depth + 1 = 3 chains of 3 descriptors
        var q = mock.deviceQueue(0, new CountingNotifier());
        ConcurrentLinkedQueue<Integer> results = new ConcurrentLinkedQueue<>();
        // A ring of 1 SQ entry (2 slots) submits the first request when the second is prepared, and the
        // reaper may complete it at once: it waits here, before it frees the slot, until the test has seen
        // every slot taken (the outcome runs before the slot is released).
        CountDownLatch gate = new CountDownLatch(1);
        UringIo.Outcome holding = (type, bytes, result) -> {
            results.add(result);
            try {
                gate.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        };
        try (UringIo io = UringIo.open(file, false, holding, 1)) {
            int depth = io.depth();
            DescriptorChain c = q.newChain();
            for (int i = 0; i <= depth; i++) {
                mock.addChain(new byte[][] {header(VirtioBlk.T_IN, i)}, new int[] {VirtioBlk.SECTOR_SIZE, 1});
            }
            for (int i = 0; i < depth; i++) {
                assertTrue(q.pop(c));
                ByteBuffer st = BlkRequest.statusByte(c);
                Completion d = q.defer(c);
                assertTrue(io.read(c, VirtioBlk.SECTOR_SIZE, (long) i * VirtioBlk.SECTOR_SIZE, d, st), "slot " + i);
            }
            assertTrue(q.pop(c));
            ByteBuffer st = BlkRequest.statusByte(c);
            Completion last = q.defer(c);
            assertFalse(io.read(c, VirtioBlk.SECTOR_SIZE, 0, last, st), "every slot is taken");
            gate.countDown();
            io.submitPrepared();
            long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (results.size() < depth && System.nanoTime() < end) {
                Thread.sleep(1);
            }
            assertEquals(depth, results.size(), "the reaper completed every request");
            assertTrue(results.stream().allMatch(r -> r == VirtioBlk.SECTOR_SIZE), results.toString());
            assertTrue(io.read(c, VirtioBlk.SECTOR_SIZE, 0, last, st), "a slot is free again");
            io.submitPrepared();
            while (results.size() < depth + 1 && System.nanoTime() < end) {
                Thread.sleep(1);
            }
            assertEquals(depth + 1, results.size());
        }
    }

    @Test
    void aPartOfMoreSegmentsThanReadvTakesIsLeftToThePoolAndTheLongestThatFitsReads() throws Exception {
        int n = UringIo.MAX_SEGMENTS;
        file = dir.resolve("segments.img");
        Files.write(file, pattern(n + 1, 3));
        MockSplitQueue mock = MockSplitQueue.create(2048);
        var q = mock.deviceQueue(0, new CountingNotifier());
        ConcurrentLinkedQueue<Integer> results = new ConcurrentLinkedQueue<>();
        try (UringIo io = UringIo.open(file, false, (type, bytes, result) -> results.add(result), 1)) {
            DescriptorChain c = q.newChain();
            int[] tooMany = new int[n + 2]; // n + 1 one-byte segments, then the status byte
            Arrays.fill(tooMany, 1);
            mock.addChain(new byte[][] {header(VirtioBlk.T_IN, 0)}, tooMany);
            assertTrue(q.pop(c));
            assertFalse(io.read(c, n + 1, 0, q.defer(c), BlkRequest.statusByte(c)), "more than UIO_MAXIOV");
            int[] fits = new int[n + 1];
            Arrays.fill(fits, 1);
            int head = mock.addChain(new byte[][] {header(VirtioBlk.T_IN, 0)}, fits);
            assertTrue(q.pop(c));
            assertTrue(io.read(c, n, 0, q.defer(c), BlkRequest.statusByte(c)), "exactly UIO_MAXIOV, and a free slot");
            io.submitPrepared();
            long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (results.isEmpty() && System.nanoTime() < end) {
                Thread.sleep(1);
            }
            assertEquals(java.util.List.of(n), java.util.List.copyOf(results));
            assertArrayEquals(Arrays.copyOf(pattern(n + 1, 3), n), mock.writtenBytes(head, n));
        }
    }
}
