package org.jvhost.engine.virtq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.ReadOnlyBufferException;
import java.util.concurrent.TimeUnit;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.testkit.CountingNotifier;
import org.jvhost.testkit.MockSplitQueue;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The SPI 1.7 ways into a chain's bytes: little-endian field accessors and per-segment views, on the
 * engine's chains and through the SPI's default methods (what a chain of another implementation gets).
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ChainFieldAccessTest {
    private final MockSplitQueue driver = MockSplitQueue.create(8);
    private final CountingNotifier calls = new CountingNotifier();

    /** Readable: 3 bytes then 13 (a field at 1..8 straddles them); writable: 2 bytes then 14. */
    private DescriptorChain popTwoByTwo(SplitQueue q) {
        byte[] a = {0x01, 0x02, 0x03};
        byte[] b = new byte[13];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) (0x04 + i);
        }
        driver.addChain(new byte[][] {a, b}, new int[] {2, 14});
        DescriptorChain c = q.newChain();
        assertTrue(q.pop(c));
        return c;
    }

    @Test
    void fieldsAreLittleEndianInOneSegmentAndAcrossTwo() {
        SplitQueue q = driver.deviceQueue(0, calls);
        for (DescriptorChain c : new DescriptorChain[] {popTwoByTwo(q), new Defaults(popTwoByTwo(q))}) {
            assertEquals(0x02, c.readByte(1));
            assertEquals((short) 0x0403, c.readShort(2), "across the segment boundary");
            assertEquals(0x08070605, c.readInt(4));
            assertEquals(0x0908070605040302L, c.readLong(1), "across the segment boundary");
            assertEquals(0x100f0e0d0c0b0a09L, c.readLong(8));

            c.writeLong(0, 0x1122334455667788L); // bytes 0-1 in the first writable segment, 2-7 in the second
            c.writeByte(8, (byte) 0x7f);
            c.writeInt(9, 0x01020304);
            c.writeShort(14, (short) 0xaabb);
            q.addUsed(c instanceof Defaults ? ((Defaults) c).c : c, 16);
        }
        q.publishUsed();
        for (int i = 0; i < 2; i++) {
            byte[] written = driver.writtenBytes(driver.pollUsed());
            assertArrayEquals(new byte[] {(byte) 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x7f,
                    0x04, 0x03, 0x02, 0x01, 0, (byte) 0xbb, (byte) 0xaa}, written);
        }
    }

    @Test
    void aFieldOutsideItsPartThrowsAndWritesNothing() {
        SplitQueue q = driver.deviceQueue(0, calls);
        for (DescriptorChain c : new DescriptorChain[] {popTwoByTwo(q), new Defaults(popTwoByTwo(q))}) {
            assertThrows(IndexOutOfBoundsException.class, () -> c.readLong(9), "readable part is 16 bytes");
            assertThrows(IndexOutOfBoundsException.class, () -> c.readByte(-1));
            assertThrows(IndexOutOfBoundsException.class, () -> c.readByte(16));
            assertThrows(IndexOutOfBoundsException.class, () -> c.writeInt(13, 1), "writable part is 16 bytes");
            assertThrows(IndexOutOfBoundsException.class, () -> c.writeShort(Integer.MAX_VALUE, (short) 1));
            q.addUsed(c instanceof Defaults ? ((Defaults) c).c : c, 16);
        }
        q.publishUsed();
        for (int i = 0; i < 2; i++) {
            assertArrayEquals(new byte[16], driver.writtenBytes(driver.pollUsed()));
        }
    }

    @Test
    void segmentViewsAreBoundedOwnedAndReadOnlyWhereTheDeviceMayNotWrite() {
        SplitQueue q = driver.deviceQueue(0, calls);
        for (DescriptorChain c : new DescriptorChain[] {popTwoByTwo(q), new Defaults(popTwoByTwo(q))}) {
            ByteBuffer readable = c.segmentView(1);
            assertEquals(0, readable.position());
            assertEquals(13, readable.limit());
            assertEquals(13, readable.capacity(), "no way past the segment");
            assertTrue(readable.isReadOnly());
            assertEquals(ByteOrder.LITTLE_ENDIAN, readable.order());
            assertEquals(0x0504, readable.getShort(0));
            assertThrows(ReadOnlyBufferException.class, () -> readable.put(0, (byte) 1));

            ByteBuffer writable = c.segmentView(3);
            assertEquals(14, writable.capacity());
            writable.position(5).limit(6); // the caller's own: the next view is untouched by this
            writable.put((byte) 0x55);
            assertEquals(0, c.segmentView(3).position());
            assertEquals(14, c.segmentView(3).limit());
            assertThrows(IndexOutOfBoundsException.class, () -> c.segmentView(4));
            q.addUsed(c instanceof Defaults ? ((Defaults) c).c : c, 16);
        }
        q.publishUsed();
        for (int i = 0; i < 2; i++) {
            assertEquals(0x55, driver.writtenBytes(driver.pollUsed())[2 + 5]);
        }
    }

    /** A chain that overrides only what SPI 1.0 required, so the SPI's default methods run. */
    @SuppressWarnings("deprecation")
    private static final class Defaults implements DescriptorChain {
        private final DescriptorChain c;

        Defaults(DescriptorChain c) {
            this.c = c;
        }

        @Override public int head() { return c.head(); }
        @Override public int readableBytes() { return c.readableBytes(); }
        @Override public int writableBytes() { return c.writableBytes(); }
        @Override public int segmentCount() { return c.segmentCount(); }
        @Override public int readableSegments() { return c.readableSegments(); }
        @Override public ByteBuffer segmentBuffer(int i) { return c.segmentBuffer(i); }
        @Override public int segmentOffset(int i) { return c.segmentOffset(i); }
        @Override public int segmentLength(int i) { return c.segmentLength(i); }
        @Override public long segmentAddress(int i) { return c.segmentAddress(i); }
        @Override public int read(int o, byte[] d, int at, int n) { return c.read(o, d, at, n); }
        @Override public int write(int o, byte[] s, int at, int n) { return c.write(o, s, at, n); }
        @Override public int copyTo(int o, DescriptorChain d, int at, int n) { return c.copyTo(o, d, at, n); }
    }
}
