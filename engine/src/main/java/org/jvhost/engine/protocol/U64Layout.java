package org.jvhost.engine.protocol;

import java.nio.ByteBuffer;

/**
 * A single u64 payload (features, protocol features, status, queue count, REPLY_ACK result, and the
 * vring fd messages):
 * <pre>
 *  0                               8
 *  +-------------------------------+
 *  |             value             |
 *  +-------------------------------+
 * </pre>
 * For SET_VRING_KICK/CALL/ERR the value packs the ring index in bits 0-7 and "no fd" in bit 8.
 */
public final class U64Layout {
    public static final int SIZE = 8;
    public static final long VRING_INDEX_MASK = 0xff;
    /** Spec: "Bit 8 is the invalid FD flag": no fd attached, the front-end polls instead. */
    public static final long VRING_NOFD_MASK = 0x100;

    private U64Layout() {
    }

    public static long get(ByteBuffer payload) {
        return payload.getLong(0);
    }

    public static ByteBuffer of(long value) {
        return Payloads.allocate(SIZE).putLong(0, value);
    }
}
