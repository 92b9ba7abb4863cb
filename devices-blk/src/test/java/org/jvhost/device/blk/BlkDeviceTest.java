package org.jvhost.device.blk;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;

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
 * The blk device over the engine's own split queue and a driver-side mock: requests go through the
 * device's I/O threads and come back through the deferred-completion path.
 */
class BlkDeviceTest {
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
     * table, and the engine counts the descriptor that points to the table against the ring size too
     * (HostileDriverTest#chainLongerThanTheRingThroughAnIndirectTable): seg_max must leave room for it, or
     * the queue breaks (it did with seg_max = ring - 2, under 1 MiB O_DIRECT reads in scripts/bench-blk.sh).
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

    @Test
    void aWriteReachesTheFileAndOnePastTheEndIsRefusedWithIoerr() throws Exception {
        byte[] disk = pattern();
        device = device(disk);
        MockSplitQueue driver = MockSplitQueue.create(RING);
        SplitQueue queue = driver.deviceQueue(VirtioFeatures.VERSION_1, new CountingNotifier());
        device.startQueue(0, queue);
        byte[] data = new byte[2 * VirtioBlk.SECTOR_SIZE];
        Arrays.fill(data, (byte) 0x7e);
        driver.addChain(new byte[][] {header(VirtioBlk.T_OUT, 4), data}, new int[] {1});
        int past = driver.addChain(new byte[][] {header(VirtioBlk.T_OUT, DISK / VirtioBlk.SECTOR_SIZE - 1), data},
                new int[] {1});

        device.handleKick(0);
        MockSplitQueue.UsedElement refused = driver.pollUsed(); // answered at once, on the worker
        assertNotNull(refused);
        assertEquals(past, refused.id());
        assertEquals(VirtioBlk.S_IOERR, driver.writtenBytes(refused)[0]);
        MockSplitQueue.UsedElement written = awaitUsed(driver, queue);
        assertEquals(VirtioBlk.S_OK, driver.writtenBytes(written)[0]);
        byte[] file = Files.readAllBytes(dir.resolve("disk.img"));
        assertArrayEquals(data, Arrays.copyOfRange(file, 4 * VirtioBlk.SECTOR_SIZE, 6 * VirtioBlk.SECTOR_SIZE));
    }

    @Test
    void getIdAnswersTheSerialAtOnceAndWriteZeroesZeroesTheRange() throws Exception {
        byte[] disk = pattern();
        device = device(disk, "off", "disk-7");
        MockSplitQueue driver = MockSplitQueue.create(RING);
        SplitQueue queue = driver.deviceQueue(VirtioFeatures.VERSION_1, new CountingNotifier());
        device.startQueue(0, queue);
        int id = driver.addChain(new byte[][] {header(VirtioBlk.T_GET_ID, 0)}, new int[] {VirtioBlk.ID_BYTES, 1});
        ByteBuffer seg = ByteBuffer.allocate(VirtioBlk.DWZ_SEGMENT_LEN).order(ByteOrder.LITTLE_ENDIAN);
        seg.putLong(VirtioBlk.DWZ_SECTOR, 8).putInt(VirtioBlk.DWZ_NUM_SECTORS, 3);
        driver.addChain(new byte[][] {header(VirtioBlk.T_WRITE_ZEROES, 0), seg.array()}, new int[] {1});

        device.handleKick(0);
        MockSplitQueue.UsedElement got = driver.pollUsed();
        assertEquals(id, got.id());
        assertEquals(VirtioBlk.ID_BYTES + 1, got.len());
        byte[] answer = driver.writtenBytes(got);
        assertEquals("disk-7", new String(answer, 0, 6, java.nio.charset.StandardCharsets.US_ASCII));
        assertEquals(0, answer[6], "zero-padded");
        assertEquals(VirtioBlk.S_OK, answer[VirtioBlk.ID_BYTES]);
        assertEquals(VirtioBlk.S_OK, driver.writtenBytes(awaitUsed(driver, queue))[0]);
        byte[] file = Files.readAllBytes(dir.resolve("disk.img"));
        assertArrayEquals(new byte[3 * VirtioBlk.SECTOR_SIZE],
                Arrays.copyOfRange(file, 8 * VirtioBlk.SECTOR_SIZE, 11 * VirtioBlk.SECTOR_SIZE));
        assertEquals(disk[11 * VirtioBlk.SECTOR_SIZE], file[11 * VirtioBlk.SECTOR_SIZE], "the sector after is kept");
    }

    @Test
    void aReadOnlyDiskRefusesWritesAndAnUnknownTypeIsUnsupported() throws Exception {
        byte[] disk = pattern();
        device = device(disk, "on", "");
        assertEquals(VirtioBlk.F_RO, device.features() & VirtioBlk.F_RO);
        MockSplitQueue driver = MockSplitQueue.create(RING);
        device.startQueue(0, driver.deviceQueue(VirtioFeatures.VERSION_1, new CountingNotifier()));
        driver.addChain(new byte[][] {header(VirtioBlk.T_OUT, 0), new byte[VirtioBlk.SECTOR_SIZE]}, new int[] {1});
        driver.addChain(new byte[][] {header(99, 0)}, new int[] {1});
        int noStatus = driver.addChain(new byte[][] {header(VirtioBlk.T_IN, 0)}, new int[0]);

        device.handleKick(0);
        assertEquals(VirtioBlk.S_IOERR, driver.writtenBytes(driver.pollUsed())[0]);
        assertEquals(VirtioBlk.S_UNSUPP, driver.writtenBytes(driver.pollUsed())[0]);
        MockSplitQueue.UsedElement none = driver.pollUsed();
        assertEquals(noStatus, none.id());
        assertEquals(0, none.len(), "no writable byte: nowhere to put a status");
        assertArrayEquals(disk, Files.readAllBytes(dir.resolve("disk.img")), "the file is unchanged");
    }

    private BlkDevice device(byte[] disk) throws Exception {
        return device(disk, "off", "");
    }

    private BlkDevice device(byte[] disk, String readOnly, String serial) throws Exception {
        Path file = Files.write(dir.resolve("disk.img"), disk);
        return (BlkDevice) new BlkProvider().create(new DeviceOptions(Map.of(BlkConfig.OPT_PATH, file.toString(),
                BlkConfig.OPT_READONLY, readOnly, BlkConfig.OPT_QUEUES, "1", BlkConfig.OPT_THREADS, "2",
                BlkConfig.OPT_SERIAL, serial)), () -> "blk@test");
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
