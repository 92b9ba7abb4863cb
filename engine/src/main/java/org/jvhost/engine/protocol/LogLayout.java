package org.jvhost.engine.protocol;

import java.nio.ByteBuffer;

/**
 * The dirty-log description of SET_LOG_BASE (spec "A vhost-user log"): where the log lies in the file
 * sent with the request (protocol feature LOG_SHMFD).
 * <pre>
 *  0                               8                               16
 *  +-------------------------------+-------------------------------+
 *  |           mmap_size           |          mmap_offset          |
 *  +-------------------------------+-------------------------------+
 * </pre>
 */
public final class LogLayout {
    public static final int MMAP_SIZE = 0;
    public static final int MMAP_OFFSET = 8;
    public static final int SIZE = 16;

    private LogLayout() {
    }

    public static long mmapSize(ByteBuffer p) {
        return p.getLong(MMAP_SIZE);
    }

    public static long mmapOffset(ByteBuffer p) {
        return p.getLong(MMAP_OFFSET);
    }

    public static ByteBuffer of(long mmapSize, long mmapOffset) {
        return Payloads.allocate(SIZE).putLong(MMAP_SIZE, mmapSize).putLong(MMAP_OFFSET, mmapOffset);
    }
}
