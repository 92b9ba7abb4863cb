package org.jvhost.testkit;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.jvhost.spi.GuestMemory;
import org.jvhost.spi.MemoryRegion;

/**
 * Test-side reads and writes at guest-physical addresses of any {@link GuestMemory} (fake, or mapped
 * from a memfd). Every access must lie inside one region and within {@link MemoryRegion#WINDOW_STRIDE}
 * bytes; anything else is a test bug and throws {@link IllegalArgumentException}. Allocates freely: this
 * is for test setup and checks, not a data path.
 */
public final class GuestAccess {

    private GuestAccess() {
    }

    /** A little-endian buffer over {@code [gpa, gpa + len)}; position 0, limit {@code len}. */
    public static ByteBuffer slice(GuestMemory memory, long gpa, int len) {
        if (len < 0 || len > MemoryRegion.WINDOW_STRIDE || !memory.contains(gpa, len)) {
            throw new IllegalArgumentException(String.format("[0x%x, +0x%x) is not inside one guest memory region",
                    gpa, len));
        }
        MemoryRegion r = memory.regionFor(gpa);
        long offset = gpa - r.guestAddress();
        return r.view(offset, len);
    }

    /** Copies {@code bytes} to {@code gpa}. */
    public static void write(GuestMemory memory, long gpa, byte[] bytes) {
        slice(memory, gpa, bytes.length).put(0, bytes);
    }

    /** Reads {@code len} bytes at {@code gpa}. */
    public static byte[] read(GuestMemory memory, long gpa, int len) {
        byte[] result = new byte[len];
        slice(memory, gpa, len).get(0, result);
        return result;
    }

    /** Sets {@code len} bytes at {@code gpa} to {@code value}. */
    public static void fill(GuestMemory memory, long gpa, int len, byte value) {
        ByteBuffer b = slice(memory, gpa, len);
        for (int i = 0; i < len; i++) {
            b.put(i, value);
        }
    }

    public static void putShort(GuestMemory memory, long gpa, int value) {
        slice(memory, gpa, 2).putShort(0, (short) value);
    }

    public static void putInt(GuestMemory memory, long gpa, int value) {
        slice(memory, gpa, 4).putInt(0, value);
    }

    public static void putLong(GuestMemory memory, long gpa, long value) {
        slice(memory, gpa, 8).putLong(0, value);
    }

    /** The unsigned 16-bit little-endian value at {@code gpa}. */
    public static int getShort(GuestMemory memory, long gpa) {
        return Short.toUnsignedInt(slice(memory, gpa, 2).getShort(0));
    }

    public static int getInt(GuestMemory memory, long gpa) {
        return slice(memory, gpa, 4).getInt(0);
    }

    public static long getLong(GuestMemory memory, long gpa) {
        return slice(memory, gpa, 8).getLong(0);
    }
}
