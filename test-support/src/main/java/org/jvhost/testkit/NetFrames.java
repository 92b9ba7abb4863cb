package org.jvhost.testkit;

import org.jvhost.spi.virtio.VirtioNet;

/** Small byte helpers for testing virtio-net devices: building chains' contents, reading RX headers. */
public final class NetFrames {
    private NetFrames() {
    }

    /** The parts one after the other, e.g. a virtio-net header and a frame as one buffer. */
    public static byte[] concat(byte[]... parts) {
        int n = 0;
        for (byte[] p : parts) {
            n += p.length;
        }
        byte[] all = new byte[n];
        int at = 0;
        for (byte[] p : parts) {
            System.arraycopy(p, 0, all, at, p.length);
            at += p.length;
        }
        return all;
    }

    /** The {@code num_buffers} field of a 12-byte virtio-net header (little-endian u16). */
    public static int numBuffers(byte[] header) {
        return (header[VirtioNet.HDR_NUM_BUFFERS] & 0xff) | (header[VirtioNet.HDR_NUM_BUFFERS + 1] & 0xff) << 8;
    }
}
