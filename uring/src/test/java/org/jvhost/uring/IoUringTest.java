package org.jvhost.uring;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A ring over a temporary file: vectored writes and reads land at their file offsets, fdatasync and NOP
 * complete with their user data, errors come back as -errno in the completion, a full SQ refuses one
 * more entry, and one thread can wait for completions while another submits.
 */
@Timeout(value = 20, unit = TimeUnit.SECONDS)
class IoUringTest {
    @TempDir
    Path dir;

    private IoUring ring;
    private int fd = -1;
    private Path file;
    private final List<long[]> done = new ArrayList<>();

    @BeforeEach
    void setUp() throws IOException {
        ring = IoUring.create(8);
        file = dir.resolve("f");
        Files.write(file, new byte[8192]);
        fd = NativeFile.open(file, true);
    }

    @AfterEach
    void tearDown() {
        ring.close();
        NativeFile.close(fd);
    }

    private void record(long userData, int result) {
        done.add(new long[] {userData, result});
    }

    /** An iovec array of two segments holding {@code a} and {@code b}. */
    private static Memory iovecs(Memory a, Memory b) {
        Memory iov = new Memory(32);
        iov.setLong(0, Pointer.nativeValue(a));
        iov.setLong(8, a.size());
        iov.setLong(16, Pointer.nativeValue(b));
        iov.setLong(24, b.size());
        return iov;
    }

    private void submitAndReap(int n) {
        assertEquals(n, ring.submitAndWait(n));
        while (done.size() < n) {
            ring.reap(this::record);
        }
    }

    @Test
    void vectoredWriteAndReadMoveBytesAtTheirOffsets() throws IOException {
        Memory a = new Memory(512);
        Memory b = new Memory(1024);
        for (int i = 0; i < 512; i++) {
            a.setByte(i, (byte) i);
        }
        for (int i = 0; i < 1024; i++) {
            b.setByte(i, (byte) (i * 7));
        }
        Memory iov = iovecs(a, b);
        assertTrue(ring.prepare(IoUring.OP_WRITEV, fd, Pointer.nativeValue(iov), 2, 4096, 0, 42));
        assertTrue(ring.prepare(IoUring.OP_FSYNC, fd, 0, 0, 0, IoUring.FSYNC_DATASYNC, 43));
        submitAndReap(2);
        assertEquals(42, done.get(0)[0]);
        assertEquals(1536, done.get(0)[1], "the write's bytes");
        assertEquals(0, done.get(1)[1], "fdatasync");
        byte[] disk = Files.readAllBytes(file);
        assertEquals(0, disk[4095]);
        assertArrayEquals(a.getByteArray(0, 512), java.util.Arrays.copyOfRange(disk, 4096, 4608));
        assertArrayEquals(b.getByteArray(0, 1024), java.util.Arrays.copyOfRange(disk, 4608, 5632));

        Memory c = new Memory(1024);
        Memory d = new Memory(512);
        Memory back = iovecs(c, d);
        done.clear();
        assertTrue(ring.prepare(IoUring.OP_READV, fd, Pointer.nativeValue(back), 2, 4096, 0, 7));
        submitAndReap(1);
        assertEquals(1536, done.get(0)[1]);
        assertArrayEquals(java.util.Arrays.copyOfRange(disk, 4096, 5120), c.getByteArray(0, 1024));
        assertArrayEquals(java.util.Arrays.copyOfRange(disk, 5120, 5632), d.getByteArray(0, 512));
    }

    @Test
    void aRegisteredFileIsNamedByItsIndexAndStaysOpenAfterItsDescriptorCloses() throws IOException {
        int other = NativeFile.open(file, true);
        assertEquals(0, ring.registerFiles(new int[] {other}));
        NativeFile.close(other); // the ring holds the file
        Memory a = new Memory(512);
        for (int i = 0; i < 512; i++) {
            a.setByte(i, (byte) (i * 3));
        }
        Memory iov = iovecs(a, a);

        assertTrue(ring.prepareFixed(IoUring.OP_WRITEV, 0, Pointer.nativeValue(iov), 1, 1024, 0, 5));
        assertTrue(ring.prepareFixed(IoUring.OP_WRITEV, 1, Pointer.nativeValue(iov), 1, 0, 0, 6));
        submitAndReap(2);
        done.sort(java.util.Comparator.comparingLong(c -> c[0])); // the write may complete second (io-wq)

        assertEquals(512, done.get(0)[1], "the write through fixed file 0");
        assertEquals(-UringNatives.EBADF, done.get(1)[1], "index 1 was never registered");
        assertArrayEquals(a.getByteArray(0, 512), java.util.Arrays.copyOfRange(Files.readAllBytes(file), 1024, 1536));
        assertEquals(-UringNatives.EBUSY, ring.registerFiles(new int[] {fd}), "once per ring");

        assertEquals(0, ring.unregisterFiles());
        done.clear();
        assertTrue(ring.prepareFixed(IoUring.OP_WRITEV, 0, Pointer.nativeValue(iov), 1, 0, 0, 7));
        submitAndReap(1);
        assertEquals(-UringNatives.EBADF, done.get(0)[1], "no file is registered any more");
        assertEquals(0, ring.registerFiles(new int[] {fd}), "and another table may be registered");
    }

    @Test
    void aFailingOperationCompletesWithMinusErrno() {
        Memory a = new Memory(512);
        Memory iov = iovecs(a, a);
        assertTrue(ring.prepare(IoUring.OP_READV, 9999, Pointer.nativeValue(iov), 2, 0, 0, 1));
        submitAndReap(1);
        assertEquals(-UringNatives.EBADF, done.get(0)[1], "a read on a closed fd: " + done.get(0)[1]);
        assertThrows(IOException.class, () -> NativeFile.open(dir.resolve("absent"), false));
    }

    @Test
    void aFullSubmissionQueueRefusesOneMoreEntryUntilSubmitted() {
        for (int i = 0; i < ring.sqEntries(); i++) {
            assertTrue(ring.prepare(IoUring.OP_NOP, -1, 0, 0, 0, 0, i));
        }
        assertFalse(ring.prepare(IoUring.OP_NOP, -1, 0, 0, 0, 0, 99));
        assertEquals(ring.sqEntries(), ring.unsubmitted());
        submitAndReap(ring.sqEntries());
        assertEquals(0, ring.unsubmitted());
        assertTrue(ring.prepare(IoUring.OP_NOP, -1, 0, 0, 0, 0, 100));
    }

    @Test
    void oneThreadWaitsForCompletionsWhileAnotherSubmits() throws Exception {
        List<Long> reaped = new java.util.concurrent.CopyOnWriteArrayList<>();
        Thread reaper = new Thread(() -> {
            while (reaped.size() < 3) {
                int r = ring.awaitCompletions();
                assertTrue(r == 0 || r == -IoUring.EINTR, "enter: " + r);
                ring.reap((u, res) -> reaped.add(u));
            }
        });
        reaper.start();
        Thread.sleep(50); // the reaper is waiting in io_uring_enter by now (or will find the entries)
        for (int i = 1; i <= 3; i++) {
            assertTrue(ring.prepare(IoUring.OP_NOP, -1, 0, 0, 0, 0, i));
            assertEquals(1, ring.submit());
        }
        reaper.join(5000);
        assertFalse(reaper.isAlive(), "the waiting thread saw the completions");
        assertEquals(List.of(1L, 2L, 3L), reaped);
    }

    @Test
    void aRegisteredEventfdIsSignalledForACompletionUntilCleared() throws IOException {
        int efd = ring.signalCompletions();
        Memory count = new Memory(8);
        assertEquals(-1, UringNatives.read(efd, count, 8), "nothing signalled before a completion");
        assertFalse(ring.hasCompletions());
        assertTrue(ring.prepare(IoUring.OP_NOP, -1, 0, 0, 0, 0, 5));
        assertEquals(1, ring.submit());
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (!ring.hasCompletions() && System.nanoTime() < end) {
            Thread.onSpinWait();
        }
        assertTrue(ring.hasCompletions(), "the NOP's completion is posted");
        ring.clearCompletionSignal();
        assertEquals(-1, UringNatives.read(efd, count, 8), "cleared");
        assertEquals(1, ring.reap(this::record));
        assertFalse(ring.hasCompletions(), "reaped");
        assertTrue(ring.prepare(IoUring.OP_NOP, -1, 0, 0, 0, 0, 6));
        assertEquals(1, ring.submitAndWait(1));
        assertEquals(8, UringNatives.read(efd, count, 8), "a later completion signals again");
        assertThrows(IllegalStateException.class, ring::signalCompletions, "one eventfd per ring");
    }

    @Test
    void errnoNamesCoverWhatTheUringAndTapCallsReport() {
        assertEquals("ENODEV", IoUring.errnoName(19)); // TUNSETIFF without a tun module
        assertEquals("EEXIST", IoUring.errnoName(17));
        assertEquals("EOPNOTSUPP", IoUring.errnoName(95)); // an io_uring op the TAP does not support
        assertEquals("EAGAIN", IoUring.errnoName(IoUring.EAGAIN));
        assertEquals("errno 999", IoUring.errnoName(999));
    }
}
