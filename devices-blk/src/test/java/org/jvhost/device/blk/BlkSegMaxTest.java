package org.jvhost.device.blk;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.jvhost.engine.virtq.SplitQueue;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.spi.virtio.VirtioBlk;
import org.jvhost.testkit.CountingNotifier;
import org.jvhost.testkit.MockSplitQueue;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * seg_max against the ring: the largest request the config space allows fits a ring of the size the
 * device expects, through an indirect table (the rest of the request handling: {@link BlkDeviceTest}).
 */
class BlkSegMaxTest {
    private static final int RING = BlkDevice.MIN_EXPECTED_RING;
    private static final int DISK = 1 << 20;

    @TempDir
    Path dir;
    private BlkDevice device;

    @AfterEach
    void close() {
        if (device != null) {
            device.close();
        }
    }

    /**
     * A Linux guest puts its largest request, header + seg_max data segments + status, in one indirect
     * table of the ring's size; the descriptor that points to the table does not count against the ring
     * size (HostileDriverTest#anIndirectTableOfTheRingSizeIsAChainOfTheRingSize). When it did, seg_max =
     * ring - 2 broke the queue under 1 MiB O_DIRECT reads in scripts/bench-blk.sh.
     */
    @Test
    void theLargestRequestSegMaxAllowsFitsTheRingThroughAnIndirectTable() throws Exception {
        byte[] disk = pattern();
        device = device(disk);
        int segMax = ByteBuffer.wrap(config()).order(ByteOrder.LITTLE_ENDIAN).getInt(VirtioBlk.CONFIG_SEG_MAX);
        MockSplitQueue driver = MockSplitQueue.create(RING);
        SplitQueue queue = driver.deviceQueue(VirtioFeatures.VERSION_1 | VirtioFeatures.RING_INDIRECT_DESC,
                new CountingNotifier());
        device.startQueue(0, queue);
        int[] writable = new int[segMax + 1];
        Arrays.fill(writable, VirtioBlk.SECTOR_SIZE);
        writable[segMax] = 1; // the status byte
        int head = driver.addIndirectChain(new byte[][] {header(VirtioBlk.T_IN, 2)}, writable);

        device.handleKick(0);
        MockSplitQueue.UsedElement used = awaitUsed(driver, queue);

        assertFalse(queue.isBroken(), queue.brokenReason());
        assertEquals(head, used.id());
        int len = segMax * VirtioBlk.SECTOR_SIZE;
        assertEquals(len + 1, used.len(), "data and status byte");
        byte[] got = driver.writtenBytes(used);
        assertEquals(VirtioBlk.S_OK, got[len], "status");
        assertArrayEquals(Arrays.copyOfRange(disk, 2 * VirtioBlk.SECTOR_SIZE, 2 * VirtioBlk.SECTOR_SIZE + len),
                Arrays.copyOf(got, len), "the sectors read from the file");
    }

    private BlkDevice device(byte[] disk) throws Exception {
        Path file = Files.write(dir.resolve("disk.img"), disk);
        return (BlkDevice) new BlkProvider().create(new DeviceOptions(Map.of(BlkConfig.OPT_PATH, file.toString(),
                BlkConfig.OPT_READONLY, "off", BlkConfig.OPT_QUEUES, "1", BlkConfig.OPT_THREADS, "2",
                BlkConfig.OPT_SERIAL, "")), () -> "blk@test");
    }

    private byte[] config() {
        byte[] c = new byte[VirtioBlk.CONFIG_SIZE];
        device.readConfig(0, c);
        return c;
    }

    private static byte[] pattern() {
        byte[] b = new byte[DISK];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) (i * 31 + i / VirtioBlk.SECTOR_SIZE);
        }
        return b;
    }

    private static byte[] header(int type, long sector) {
        ByteBuffer h = ByteBuffer.allocate(VirtioBlk.REQ_HDR_LEN).order(ByteOrder.LITTLE_ENDIAN);
        h.putInt(VirtioBlk.REQ_TYPE, type);
        h.putLong(VirtioBlk.REQ_SECTOR, sector);
        return h.array();
    }

    /** The next used element, once an I/O thread completed it and the "worker" (this thread) drained it. */
    private static MockSplitQueue.UsedElement awaitUsed(MockSplitQueue driver, SplitQueue queue) throws Exception {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (System.nanoTime() < deadline) {
            queue.drainCompletions();
            MockSplitQueue.UsedElement e = driver.pollUsed();
            if (e != null) {
                return e;
            }
            Thread.sleep(1);
        }
        throw new AssertionError("no completion within 5 s");
    }
}
