package org.jvhost.testkit;

import com.sun.jna.Native;
import com.sun.jna.Pointer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import org.jvhost.spi.GuestMemory;
import org.jvhost.spi.MemoryRegion;

/**
 * Guest memory for tests: regions backed by direct {@link ByteBuffer}s at chosen guest-physical
 * addresses. Build it with {@code FakeGuestMemory.builder().region(0x10000, 1 << 20).build()}, or wrap
 * existing buffers (a memfd mapping shared with a front-end) with {@link Builder#region(long, ByteBuffer)}.
 * A region over a direct buffer reports the buffer's address as its {@link MemoryRegion#nativeAddress()},
 * as a mapped region does, so devices under test take the path they take in the host (readv/writev and
 * io_uring on {@link org.jvhost.spi.DescriptorChain#segmentAddress(int)}); one over a heap buffer reports
 * 0, as memory that is not natively mapped.
 *
 * <p>The read/write helpers are for setting up and checking memory in tests; see {@link GuestAccess}.
 */
public final class FakeGuestMemory implements GuestMemory {

    private final Region[] regions;

    private FakeGuestMemory(Region[] sorted) {
        this.regions = sorted;
    }

    /** A builder; add regions, then {@link Builder#build()}. */
    public static Builder builder() {
        return new Builder();
    }

    /** Memory with one zero-filled region of {@code size} bytes at {@code gpa}. */
    public static FakeGuestMemory of(long gpa, int size) {
        return builder().region(gpa, size).build();
    }

    /** Collects regions; {@link #build()} rejects overlaps. */
    public static final class Builder {
        private final List<Region> regions = new ArrayList<>();

        private Builder() {
        }

        /** A zero-filled region of {@code size} bytes (at most 2 GiB - 1) at {@code gpa}. */
        public Builder region(long gpa, long size) {
            if (size <= 0 || size > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("fake region size must be in 1..2^31-1, not " + size);
            }
            return region(gpa, ByteBuffer.allocateDirect((int) size));
        }

        /**
         * A region over {@code backing}'s bytes from index 0 to its capacity, sharing its content (for
         * example a memfd mapping that a scripted front-end also hands to the host).
         */
        public Builder region(long gpa, ByteBuffer backing) {
            if (backing.capacity() == 0) {
                throw new IllegalArgumentException("empty backing buffer for region at 0x" + Long.toHexString(gpa));
            }
            if (Long.compareUnsigned(gpa, -1L - backing.capacity()) > 0) {
                throw new IllegalArgumentException("region at 0x" + Long.toHexString(gpa) + " wraps past 2^64");
            }
            regions.add(new Region(gpa, backing));
            return this;
        }

        /** The memory snapshot. */
        public FakeGuestMemory build() {
            Region[] sorted = regions.toArray(new Region[0]);
            Arrays.sort(sorted, Comparator.comparing(Region::guestAddress, Long::compareUnsigned));
            for (int i = 1; i < sorted.length; i++) {
                if (Long.compareUnsigned(sorted[i].gpa - sorted[i - 1].gpa, sorted[i - 1].size) < 0) {
                    throw new IllegalArgumentException("overlapping fake regions " + sorted[i - 1] + " and " + sorted[i]);
                }
            }
            return new FakeGuestMemory(sorted);
        }
    }

    /** One fake region: windows are slices of the backing buffer, per the {@link MemoryRegion} contract. */
    public static final class Region implements MemoryRegion {
        private final long gpa;
        private final long size;
        private final ByteBuffer backing;
        private final ByteBuffer[] windows;
        private final long nativeAddress;

        private Region(long gpa, ByteBuffer backing) {
            this.gpa = gpa;
            // the duplicate below keeps the direct buffer, and so this address, alive with the region
            this.nativeAddress = backing.isDirect() ? Pointer.nativeValue(Native.getDirectBufferPointer(backing)) : 0;
            this.backing = backing.duplicate().clear().order(ByteOrder.LITTLE_ENDIAN);
            this.size = backing.capacity();
            int count = (int) ((size + WINDOW_STRIDE - 1) / WINDOW_STRIDE);
            this.windows = new ByteBuffer[count];
            for (int i = 0; i < count; i++) {
                int start = (int) (i * WINDOW_STRIDE);
                int len = (int) Math.min(2 * WINDOW_STRIDE, size - start);
                windows[i] = this.backing.slice(start, len).order(ByteOrder.LITTLE_ENDIAN);
            }
        }

        /** The whole backing buffer (little-endian, independent position and limit). */
        public ByteBuffer backing() {
            return backing.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        }

        @Override public long guestAddress() { return gpa; }
        @Override public long size() { return size; }
        @Override public ByteBuffer window(long offset) { return windows[(int) (offset / WINDOW_STRIDE)]; }
        @Override public long nativeAddress() { return nativeAddress; }

        @Override
        public String toString() {
            return String.format("fake region gpa=0x%x size=0x%x", gpa, size);
        }
    }

    @Override
    public MemoryRegion regionFor(long gpa) {
        for (Region r : regions) {
            if (Long.compareUnsigned(gpa - r.gpa, r.size) < 0) {
                return r;
            }
        }
        return null;
    }

    @Override
    public int regionCount() {
        return regions.length;
    }

    @Override
    public Region region(int i) {
        return regions[i];
    }

    /** Copies {@code bytes} to {@code gpa}. */
    public void write(long gpa, byte[] bytes) {
        GuestAccess.write(this, gpa, bytes);
    }

    /** Reads {@code len} bytes at {@code gpa}. */
    public byte[] read(long gpa, int len) {
        return GuestAccess.read(this, gpa, len);
    }

    /** Sets {@code len} bytes at {@code gpa} to {@code value} (guard patterns). */
    public void fill(long gpa, int len, byte value) {
        GuestAccess.fill(this, gpa, len, value);
    }

    public void putShort(long gpa, int value) { GuestAccess.putShort(this, gpa, value); }
    public void putInt(long gpa, int value) { GuestAccess.putInt(this, gpa, value); }
    public void putLong(long gpa, long value) { GuestAccess.putLong(this, gpa, value); }
    /** Unsigned 16-bit value at {@code gpa}. */
    public int getShort(long gpa) { return GuestAccess.getShort(this, gpa); }
    public int getInt(long gpa) { return GuestAccess.getInt(this, gpa); }
    public long getLong(long gpa) { return GuestAccess.getLong(this, gpa); }

    @Override
    public String toString() {
        return "FakeGuestMemory" + Arrays.toString(regions);
    }
}
