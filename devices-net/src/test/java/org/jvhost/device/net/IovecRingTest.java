package org.jvhost.device.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import java.io.IOException;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The io_uring writev batch over a socket pair that keeps frame boundaries (as a TAP does). */
@Timeout(value = 20, unit = TimeUnit.SECONDS)
class IovecRingTest {
    private static final int MAX_FRAME = 4096;
    /** The ring size the net device uses. */
    private static final int ENTRIES = PairDataPath.TX_BATCH;

    private final SocketPairTap pair = new SocketPairTap(1, 0);
    private final IovecRing ring;
    /** Frame bytes: frame i of a batch at i * MAX_FRAME. */
    private final Memory data = new Memory((long) ENTRIES * MAX_FRAME);
    private final Memory iov = new Memory((long) TapNatives.IOV_MAX * TapNatives.IOVEC_SIZE);
    private final int[] firsts = new int[ENTRIES];
    private final int[] counts = new int[ENTRIES];
    private final long[] results = new long[ENTRIES];

    IovecRingTest() throws IOException {
        ring = IovecRing.create(ENTRIES);
    }

    @AfterEach
    void close() {
        ring.close();
        pair.close();
    }

    /** Lays out {@code frames} frames, frame i {@code length(i)} bytes in {@code segments} iovecs; returns them. */
    private byte[][] layOut(int frames, int seed, int segments) {
        byte[][] expected = new byte[frames][];
        int entry = 0;
        for (int i = 0; i < frames; i++) {
            int length = 20 + (seed * 31 + i * 97) % (MAX_FRAME - 20);
            byte[] frame = new byte[length];
            for (int b = 0; b < length; b++) {
                frame[b] = (byte) (seed + i * 13 + b);
            }
            data.write((long) i * MAX_FRAME, frame, 0, length);
            expected[i] = frame;
            firsts[i] = entry;
            counts[i] = segments;
            int piece = length / segments;
            for (int s = 0; s < segments; s++) {
                int offset = s * piece;
                int len = s == segments - 1 ? length - offset : piece;
                putIovec(entry++, Pointer.nativeValue(data) + (long) i * MAX_FRAME + offset, len);
            }
        }
        return expected;
    }

    private void putIovec(int entry, long address, long length) {
        iov.setLong((long) entry * TapNatives.IOVEC_SIZE, address);
        iov.setLong((long) entry * TapNatives.IOVEC_SIZE + 8, length);
    }

    private int write(int frames) {
        return ring.writev(pair.fd(0), Pointer.nativeValue(iov), firsts, counts, frames, results);
    }

    @Test
    void aFullBatchArrivesWholeAndInOrderWithEachWritesByteCount() {
        byte[][] expected = layOut(ENTRIES, 1, 3);

        assertEquals(0, write(ENTRIES));

        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i].length, results[i], "result of frame " + i);
            assertArrayEquals(expected[i], pair.receive(0), "frame " + i);
        }
        assertNull(pair.receive(0), "one frame per write");
    }

    @Test
    void withItsTapRegisteredAsAFixedFileTheRingStillMovesEveryFrameAndServesOtherDescriptorsByNumber() {
        assertEquals(0, ring.registerFile(pair.fd(0)));
        byte[][] expected = layOut(ENTRIES, 5, 1);

        assertEquals(0, write(ENTRIES));

        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i].length, results[i], "result of frame " + i);
            assertArrayEquals(expected[i], pair.receive(0), "frame " + i);
        }
        // the peer end is not registered: its entries carry the descriptor
        layOut(2, 6, 2);
        assertEquals(0, ring.writev(pair.peerFd(0), Pointer.nativeValue(iov), firsts, counts, 2, results));
        assertEquals(2, Arrays.stream(results, 0, 2).filter(r -> r > 0).count(), Arrays.toString(results));
    }

    @Test
    void thousandsOfBatchesOfEverySizeWrapTheRingsIndices() {
        for (int batch = 0; batch < 3000; batch++) {
            int frames = 1 + batch % ENTRIES;
            byte[][] expected = layOut(frames, batch, 1 + batch % 2);

            assertEquals(0, write(frames));

            for (int i = 0; i < frames; i++) {
                assertEquals(expected[i].length, results[i], "batch " + batch + " frame " + i);
                assertArrayEquals(expected[i], pair.receive(0), "batch " + batch + " frame " + i);
            }
        }
        assertNull(pair.receive(0));
    }

    @Test
    void aWriteThatFailsGetsItsErrnoAndTheOthersOfTheBatchAreWritten() {
        byte[][] expected = layOut(5, 7, 1);
        putIovec(firsts[2], 8, 100); // frame 2 reads from address 8: the kernel's copy faults

        assertEquals(0, write(5));

        assertEquals(-14, results[2], "EFAULT for the frame whose memory is not mapped");
        for (int i : new int[] {0, 1, 3, 4}) {
            assertEquals(expected[i].length, results[i]);
            assertArrayEquals(expected[i], pair.receive(0), "frame " + i);
        }
        assertNull(pair.receive(0));
    }

    @Test
    void aBatchOfReadsTakesTheQueuedFramesInOrderAndTheReadsBeyondThemFindTheQueueEmptyAtOnce() {
        byte[][] sent = layOut(5, 3, 1); // only for their contents
        for (byte[] frame : sent) {
            pair.send(0, frame);
        }
        int slots = 8;
        for (int i = 0; i < slots; i++) { // slot i: MAX_FRAME bytes at i * MAX_FRAME, in 1 or 2 iovecs
            firsts[i] = 2 * i;
            counts[i] = 1 + i % 2;
            long base = Pointer.nativeValue(data) + (long) i * MAX_FRAME;
            putIovec(2 * i, base, i % 2 == 0 ? MAX_FRAME : 10);
            putIovec(2 * i + 1, base + 10, MAX_FRAME - 10);
        }
        data.clear(); // the reads must fill it

        assertEquals(0, ring.readv(pair.fd(0), Pointer.nativeValue(iov), firsts, counts, slots, results));

        for (int i = 0; i < sent.length; i++) {
            assertEquals(sent[i].length, results[i], "slot " + i);
            assertArrayEquals(sent[i], data.getByteArray((long) i * MAX_FRAME, sent[i].length), "slot " + i);
        }
        for (int i = sent.length; i < slots; i++) {
            assertEquals(-TapNatives.EAGAIN, results[i], "slot " + i + ": nothing queued, and no waiting for it");
        }
    }

    @Test
    void aBatchLargerThanTheRingIsRefused() {
        int[] more = new int[ENTRIES + 1];
        assertThrows(IllegalArgumentException.class, () -> ring.writev(pair.fd(0), Pointer.nativeValue(iov), more,
                more, more.length, new long[more.length]));
        assertEquals(ENTRIES, ring.capacity());
        assertEquals(0, Arrays.stream(results).sum());
    }
}
