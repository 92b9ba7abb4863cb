package org.jvhost.testkit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 10, unit = TimeUnit.SECONDS)
class FakeGuestMemoryTest {

    @Test
    void regionsAreSortedAndAddressedByGpa() {
        FakeGuestMemory m = FakeGuestMemory.builder().region(0x100000, 0x1000).region(0x1000, 0x1000).build();
        assertEquals(2, m.regionCount());
        assertEquals(0x1000, m.region(0).guestAddress());
        assertSame(m.region(1), m.regionFor(0x100fff));
        assertNull(m.regionFor(0x2000));
        assertTrue(m.contains(0x1ff0, 16));
        assertTrue(!m.contains(0x1ff0, 17));
    }

    @Test
    void directRegionsHaveTheirBuffersAddressAndHeapOnesNone() {
        ByteBuffer direct = ByteBuffer.allocateDirect(64);
        FakeGuestMemory m = FakeGuestMemory.builder()
                .region(0x8000, direct).region(0x9000, ByteBuffer.allocate(64)).build();
        long address = m.region(0).nativeAddress();
        assertTrue(address != 0);
        direct.put(5, (byte) 42);
        assertEquals(42, new com.sun.jna.Pointer(address).getByte(5), "the address is the buffer's");
        assertEquals(0, m.region(1).nativeAddress(), "a heap buffer is not natively mapped");
    }

    @Test
    void helpersRoundTripLittleEndian() {
        FakeGuestMemory m = FakeGuestMemory.of(0x1000, 0x1000);
        m.putInt(0x1004, 0x11223344);
        assertArrayEquals(new byte[] {0x44, 0x33, 0x22, 0x11}, m.read(0x1004, 4));
        m.write(0x1010, new byte[] {1, 2});
        assertEquals(0x0201, m.getShort(0x1010));
        m.putLong(0x1ff8, -2L);
        assertEquals(-2L, m.getLong(0x1ff8));
        assertThrows(IllegalArgumentException.class, () -> m.putLong(0x1ffc, 1));
    }

    @Test
    void wrappedBuffersShareContent() {
        ByteBuffer shared = ByteBuffer.allocateDirect(64);
        FakeGuestMemory m = FakeGuestMemory.builder().region(0x8000, shared).build();
        shared.put(5, (byte) 42);
        assertEquals(42, m.read(0x8005, 1)[0]);
        m.fill(0x8000, 4, (byte) 7);
        assertEquals(7, shared.get(3));
    }

    @Test
    void overlapsAreRefused() {
        assertThrows(IllegalArgumentException.class,
                () -> FakeGuestMemory.builder().region(0x1000, 0x1000).region(0x1800, 0x1000).build());
    }
}
