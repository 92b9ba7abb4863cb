package org.jvhost.device.blk;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.virtio.VirtioBlk;

/**
 * Reading one request chain (see {@link VirtioBlk} for the layout), on the worker: the header, and
 * views of guest memory that stay valid after the chain object is reused, for an I/O thread.
 */
final class BlkRequest {
    private BlkRequest() {
    }

    /** The header's type field, or -1 if the readable part is shorter than a header. */
    static int type(DescriptorChain c, byte[] scratch) {
        if (c.read(0, scratch, 0, VirtioBlk.REQ_HDR_LEN) < VirtioBlk.REQ_HDR_LEN) {
            return -1;
        }
        return ByteBuffer.wrap(scratch).order(ByteOrder.LITTLE_ENDIAN).getInt(VirtioBlk.REQ_TYPE);
    }

    /** The header's sector field; {@link #type} read the header into {@code scratch}. */
    static long sector(byte[] scratch) {
        return ByteBuffer.wrap(scratch).order(ByteOrder.LITTLE_ENDIAN).getLong(VirtioBlk.REQ_SECTOR);
    }

    /**
     * Views of {@code len} bytes of the chain's readable ({@code writable} false) or writable part from
     * {@code from}: one buffer per segment it touches, each its own ({@link DescriptorChain#segmentView},
     * read-only for the readable part).
     */
    static ByteBuffer[] views(DescriptorChain c, boolean writable, int from, int len) {
        int first = writable ? c.readableSegments() : 0;
        int end = writable ? c.segmentCount() : c.readableSegments();
        int count = 0;
        int skip = from;
        int left = len;
        ByteBuffer[] out = new ByteBuffer[end - first];
        for (int i = first; i < end && left > 0; i++) {
            int segLen = c.segmentLength(i);
            if (skip >= segLen) {
                skip -= segLen;
                continue;
            }
            int n = Math.min(segLen - skip, left);
            ByteBuffer view = c.segmentView(i);
            out[count++] = skip == 0 && n == segLen ? view : view.slice(skip, n);
            left -= n;
            skip = 0;
        }
        return count == out.length ? out : java.util.Arrays.copyOf(out, count);
    }

    /** A one-byte view of the last writable byte: the status. The chain has at least one writable byte. */
    static ByteBuffer statusByte(DescriptorChain c) {
        return views(c, true, c.writableBytes() - 1, 1)[0];
    }

    /**
     * Whether {@code bytes} at {@code sector} lie inside a disk of {@code capacity} bytes and are whole
     * sectors.
     */
    static boolean inside(long sector, long bytes, long capacity) {
        if (sector < 0 || bytes < 0 || (bytes & (VirtioBlk.SECTOR_SIZE - 1)) != 0) {
            return false;
        }
        long sectors = capacity >>> VirtioBlk.SECTOR_SHIFT;
        return sector <= sectors && (bytes >>> VirtioBlk.SECTOR_SHIFT) <= sectors - sector;
    }
}
