package org.jvhost.engine.protocol;

import java.nio.ByteBuffer;

/**
 * The payload of GET_INFLIGHT_FD and SET_INFLIGHT_FD (spec "Inflight description"), 24 bytes as QEMU
 * and libvhost-user send it (the C struct's size, 4 bytes of tail padding included):
 * <pre>
 *  0               8               16      18      20      24
 *  +---------------+---------------+-------+-------+-------+
 *  |   mmap_size   |  mmap_offset  | num_q | q_size|  pad  |
 *  +---------------+---------------+-------+-------+-------+
 * </pre>
 * In GET_INFLIGHT_FD the front-end fills num_queues and queue_size; the back-end's reply gives all four
 * and carries the memfd. SET_INFLIGHT_FD gives the region back (after a reconnect) with its fd.
 */
public final class InflightLayout {
    public static final int SIZE = 24;
    private static final int MMAP_SIZE = 0;
    private static final int MMAP_OFFSET = 8;
    private static final int NUM_QUEUES = 16;
    private static final int QUEUE_SIZE = 18;

    private InflightLayout() {
    }

    public static long mmapSize(ByteBuffer p) {
        return p.getLong(MMAP_SIZE);
    }

    public static long mmapOffset(ByteBuffer p) {
        return p.getLong(MMAP_OFFSET);
    }

    public static int numQueues(ByteBuffer p) {
        return Short.toUnsignedInt(p.getShort(NUM_QUEUES));
    }

    public static int queueSize(ByteBuffer p) {
        return Short.toUnsignedInt(p.getShort(QUEUE_SIZE));
    }

    public static ByteBuffer of(long mmapSize, long mmapOffset, int numQueues, int queueSize) {
        return Payloads.allocate(SIZE).putLong(MMAP_SIZE, mmapSize).putLong(MMAP_OFFSET, mmapOffset)
                .putShort(NUM_QUEUES, (short) numQueues).putShort(QUEUE_SIZE, (short) queueSize);
    }
}
