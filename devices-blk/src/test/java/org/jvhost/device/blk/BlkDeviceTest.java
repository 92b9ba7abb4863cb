package org.jvhost.device.blk;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.jvhost.engine.virtq.SplitQueue;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.InvalidOptionException;
import org.jvhost.spi.OptionSpec;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.virtio.VirtioBlk;
import org.jvhost.testkit.CountingNotifier;
import org.jvhost.testkit.MockSplitQueue;
import org.jvhost.testkit.MockSplitQueue.UsedElement;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The blk device over a driver-side mock ring: what a guest asks for lands in the file and comes back,
 * and every request the device must refuse gets its status (IOERR, UNSUPP) without touching the file
 * outside the disk, while the requests around it are served. Here on the thread pool ({@code uring=off});
 * {@link BlkDeviceUringTest} runs the same on io_uring.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class BlkDeviceTest {
    private static final int SECTORS = 64;

    @TempDir
    Path dir;

    final MockSplitQueue driver = MockSplitQueue.create(64);
    SplitQueue queue;
    VhostUserDevice device;
    Path file;

    /** The {@code uring} option the tests run with. */
    String uring() {
        return "off";
    }

    /** What the device is created with: a context that cannot watch fds. */
    DeviceContext context() {
        return () -> "blk@test";
    }

    void open(String... extra) throws Exception {
        file = dir.resolve("disk.img");
        if (!Files.exists(file)) {
            Files.write(file, new byte[SECTORS * VirtioBlk.SECTOR_SIZE]);
        }
        Map<String, String> options = new HashMap<>(Map.of("path", file.toString(), "uring", uring()));
        for (String kv : extra) {
            options.put(kv.substring(0, kv.indexOf('=')), kv.substring(kv.indexOf('=') + 1));
        }
        device = new BlkProvider().create(withDefaults(options), context());
        queue = driver.deviceQueue(0, new CountingNotifier());
        device.startQueue(0, queue);
    }

    /** The options as the host hands them over: the defaults of the provider's specs filled in. */
    private static DeviceOptions withDefaults(Map<String, String> given) {
        Map<String, String> all = new HashMap<>();
        for (OptionSpec spec : new BlkProvider().options()) {
            if (spec.defaultValue() != null) {
                all.put(spec.name(), spec.defaultValue());
            }
        }
        all.putAll(given);
        return new DeviceOptions(all);
    }

    @AfterEach
    void close() {
        if (device != null) {
            device.close();
        }
    }

    static byte[] header(int type, long sector) {
        return ByteBuffer.allocate(VirtioBlk.REQ_HDR_LEN).order(ByteOrder.LITTLE_ENDIAN)
                .putInt(VirtioBlk.REQ_TYPE, type).putLong(VirtioBlk.REQ_SECTOR, sector).array();
    }

    /** Kicks the device and publishes its completions until every request is used. */
    UsedElement serve() throws InterruptedException {
        int before = driver.usedIdx();
        device.handleKick(0);
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (queue.deferredCount() > 0 && System.nanoTime() < end) {
            queue.drainCompletions();
            Thread.sleep(1);
        }
        assertEquals(0, queue.deferredCount(), "every deferred request completed");
        assertEquals(before + 1, driver.usedIdx(), "one request, one used element");
        return driver.pollUsed();
    }

    int statusOf(UsedElement e) {
        byte[] written = driver.writtenBytes(e);
        return written[written.length - 1];
    }

    UsedElement write(long sector, byte[] data) throws InterruptedException {
        driver.addChain(new byte[][] {header(VirtioBlk.T_OUT, sector), data}, new int[] {1});
        return serve();
    }

    UsedElement read(long sector, int len) throws InterruptedException {
        driver.addChain(new byte[][] {header(VirtioBlk.T_IN, sector)}, new int[] {len, 1});
        return serve();
    }

    static byte[] pattern(int len, int seed) {
        byte[] b = new byte[len];
        for (int i = 0; i < len; i++) {
            b[i] = (byte) (i * 31 + seed);
        }
        return b;
    }

    @Test
    void aWriteLandsInTheFileAtItsSectorAndReadsBack() throws Exception {
        open();
        byte[] data = pattern(2 * VirtioBlk.SECTOR_SIZE, 7);
        UsedElement w = write(3, data);
        assertEquals(1, w.len(), "a write returns only the status byte");
        assertEquals(VirtioBlk.S_OK, statusOf(w));
        byte[] disk = Files.readAllBytes(file);
        assertArrayEquals(data, Arrays.copyOfRange(disk, 3 * VirtioBlk.SECTOR_SIZE, 5 * VirtioBlk.SECTOR_SIZE));
        UsedElement r = read(3, data.length);
        assertEquals(data.length + 1, r.len());
        byte[] back = driver.writtenBytes(r);
        assertEquals(VirtioBlk.S_OK, back[data.length]);
        assertArrayEquals(data, Arrays.copyOf(back, data.length));
        assertEquals(data.length, device.counters().get("written_bytes"));
        assertEquals(data.length, device.counters().get("read_bytes"));
        assertEquals(uring().equals("off") ? 0L : 1L, device.counters().get("io_uring"), "the engine in use");
    }

    @Test
    void rangesPastTheEndOrNotWholeSectorsFailWithIoerrAndLeaveTheFileAlone() throws Exception {
        open();
        byte[] before = Files.readAllBytes(file);
        assertEquals(VirtioBlk.S_IOERR, statusOf(write(SECTORS - 1, new byte[2 * VirtioBlk.SECTOR_SIZE])));
        assertEquals(VirtioBlk.S_IOERR, statusOf(write(SECTORS, new byte[VirtioBlk.SECTOR_SIZE])));
        assertEquals(VirtioBlk.S_IOERR, statusOf(write(-1, new byte[VirtioBlk.SECTOR_SIZE])), "sector 2^64-1");
        assertEquals(VirtioBlk.S_IOERR, statusOf(write(Long.MAX_VALUE >>> 8, new byte[VirtioBlk.SECTOR_SIZE])));
        assertEquals(VirtioBlk.S_IOERR, statusOf(write(0, new byte[100])), "not whole sectors");
        assertEquals(VirtioBlk.S_IOERR, statusOf(read(SECTORS, VirtioBlk.SECTOR_SIZE)));
        assertEquals(VirtioBlk.S_IOERR, statusOf(read(0, 100)));
        assertArrayEquals(before, Files.readAllBytes(file));
        assertEquals(7, device.counters().get("errors"));
        assertEquals(VirtioBlk.S_OK, statusOf(write(SECTORS - 1, new byte[VirtioBlk.SECTOR_SIZE])), "the last sector");
    }

    @Test
    void malformedRequestsGetAStatusOrNothingAndTheQueueGoesOn() throws Exception {
        open();
        driver.addChain(new byte[][] {new byte[8]}, new int[] {1});
        assertEquals(VirtioBlk.S_IOERR, statusOf(serve()), "a header shorter than 16 bytes");
        driver.addChain(new byte[][] {header(99, 0)}, new int[] {1});
        assertEquals(VirtioBlk.S_UNSUPP, statusOf(serve()), "an unknown request type");
        driver.addChain(new byte[][] {header(VirtioBlk.T_IN, 0)}, new int[0]);
        assertEquals(0, serve().len(), "no writable byte: nowhere to put a status, nothing written");
        driver.addChain(new byte[][] {header(VirtioBlk.T_DISCARD, 0), new byte[7]}, new int[] {1});
        assertEquals(VirtioBlk.S_IOERR, statusOf(serve()), "a DISCARD without a whole segment");
        assertEquals(VirtioBlk.S_OK, statusOf(write(0, new byte[VirtioBlk.SECTOR_SIZE])), "the queue still serves");
    }

    @Test
    void aReadOnlyDiskRefusesWritesAndZeroesButReads() throws Exception {
        open();
        Files.write(file, pattern(SECTORS * VirtioBlk.SECTOR_SIZE, 3));
        device.close();
        open("readonly=on");
        assertTrue((device.features() & VirtioBlk.F_RO) != 0);
        assertEquals(VirtioBlk.S_IOERR, statusOf(write(0, new byte[VirtioBlk.SECTOR_SIZE])));
        driver.addChain(new byte[][] {header(VirtioBlk.T_WRITE_ZEROES, 0), segment(0, 1)}, new int[] {1});
        assertEquals(VirtioBlk.S_IOERR, statusOf(serve()));
        assertArrayEquals(pattern(SECTORS * VirtioBlk.SECTOR_SIZE, 3), Files.readAllBytes(file));
        assertEquals(VirtioBlk.S_OK, statusOf(read(0, VirtioBlk.SECTOR_SIZE)));
        assertThrows(IllegalArgumentException.class, () -> device.resize(2L * SECTORS * VirtioBlk.SECTOR_SIZE));
    }

    private static byte[] segment(long sector, int sectors) {
        return ByteBuffer.allocate(VirtioBlk.DWZ_SEGMENT_LEN).order(ByteOrder.LITTLE_ENDIAN)
                .putLong(VirtioBlk.DWZ_SECTOR, sector).putInt(VirtioBlk.DWZ_NUM_SECTORS, sectors).array();
    }

    @Test
    void writeZeroesAndDiscardLeaveZeroesInsideTheDiskOnly() throws Exception {
        open();
        Files.write(file, pattern(SECTORS * VirtioBlk.SECTOR_SIZE, 5));
        driver.addChain(new byte[][] {header(VirtioBlk.T_WRITE_ZEROES, 0), segment(2, 2)}, new int[] {1});
        assertEquals(VirtioBlk.S_OK, statusOf(serve()));
        driver.addChain(new byte[][] {header(VirtioBlk.T_DISCARD, 0), segment(10, 1)}, new int[] {1});
        assertEquals(VirtioBlk.S_OK, statusOf(serve()));
        driver.addChain(new byte[][] {header(VirtioBlk.T_WRITE_ZEROES, 0), segment(SECTORS - 1, 2)}, new int[] {1});
        assertEquals(VirtioBlk.S_IOERR, statusOf(serve()), "past the end");
        byte[] disk = Files.readAllBytes(file);
        byte[] want = pattern(SECTORS * VirtioBlk.SECTOR_SIZE, 5);
        Arrays.fill(want, 2 * VirtioBlk.SECTOR_SIZE, 4 * VirtioBlk.SECTOR_SIZE, (byte) 0);
        Arrays.fill(want, 10 * VirtioBlk.SECTOR_SIZE, 11 * VirtioBlk.SECTOR_SIZE, (byte) 0);
        assertArrayEquals(want, disk);
    }

    @Test
    void getIdAnswersTheSerialAndFlushSucceeds() throws Exception {
        open("serial=jv-disk-0");
        driver.addChain(new byte[][] {header(VirtioBlk.T_GET_ID, 0)}, new int[] {VirtioBlk.ID_BYTES, 1});
        UsedElement id = serve();
        byte[] written = driver.writtenBytes(id);
        assertEquals(VirtioBlk.S_OK, written[written.length - 1]);
        assertEquals("jv-disk-0", new String(written, 0, 9, StandardCharsets.US_ASCII));
        assertEquals(0, written[9], "zero-padded");
        driver.addChain(new byte[][] {header(VirtioBlk.T_FLUSH, 0)}, new int[] {1});
        assertEquals(VirtioBlk.S_OK, statusOf(serve()));
    }

    @Test
    void configSpaceSaysCapacityAndLimitsAndResizeGrowsTheFile() throws Exception {
        open("queues=2");
        byte[] config = new byte[device.configSize()];
        device.readConfig(0, config);
        ByteBuffer c = ByteBuffer.wrap(config).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(SECTORS, c.getLong(VirtioBlk.CONFIG_CAPACITY));
        assertEquals(2, c.getShort(VirtioBlk.CONFIG_NUM_QUEUES));
        assertEquals(VirtioBlk.SECTOR_SIZE, c.getInt(VirtioBlk.CONFIG_BLK_SIZE));
        assertTrue(c.getInt(VirtioBlk.CONFIG_SEG_MAX) <= 128 - 2, "seg_max fits QEMU's default 128-entry ring");
        assertThrows(IllegalArgumentException.class, () -> device.resize(SECTORS * VirtioBlk.SECTOR_SIZE - 512L),
                "a disk does not shrink");
        assertThrows(IllegalArgumentException.class, () -> device.resize(SECTORS * VirtioBlk.SECTOR_SIZE + 100L));
        device.resize(2L * SECTORS * VirtioBlk.SECTOR_SIZE);
        assertEquals(2L * SECTORS * VirtioBlk.SECTOR_SIZE, Files.size(file));
        assertEquals(VirtioBlk.S_IOERR, statusOf(read(SECTORS, VirtioBlk.SECTOR_SIZE)),
                "past the capacity the driver knows until it reads the config space again");
        device.readConfig(0, config);
        assertEquals(2 * SECTORS, ByteBuffer.wrap(config).order(ByteOrder.LITTLE_ENDIAN).getLong(VirtioBlk.CONFIG_CAPACITY));
        assertEquals(VirtioBlk.S_OK, statusOf(read(SECTORS, VirtioBlk.SECTOR_SIZE)), "the grown part");
    }

    @Test
    void badOptionsAreRefusedNamingTheOption() {
        InvalidOptionException serial = assertThrows(InvalidOptionException.class, () -> new BlkProvider().create(
                withDefaults(Map.of("path", "/dev/null", "serial", "x".repeat(21))), () -> "blk@test"));
        assertTrue(serial.getMessage().contains("serial"), serial.getMessage());
        InvalidOptionException missing = assertThrows(InvalidOptionException.class, () -> new BlkProvider().create(
                withDefaults(Map.of("path", dir.resolve("absent.img").toString())), () -> "blk@test"));
        assertTrue(missing.getMessage().contains("absent.img"), missing.getMessage());
        InvalidOptionException uring = assertThrows(InvalidOptionException.class, () -> new BlkProvider().create(
                withDefaults(Map.of("path", "/dev/null", "uring", "yes")), () -> "blk@test"));
        assertTrue(uring.getMessage().contains("uring=yes: one of auto, on, off"), uring.getMessage());
    }
}
