package org.jvhost.engine.protocol;

import java.nio.ByteBuffer;

/**
 * Device config space access ({@code VhostUserConfig}), GET_CONFIG and SET_CONFIG:
 * <pre>
 *  0               4               8               12
 *  +---------------+---------------+---------------+------------------------
 *  |    offset     |     size      |     flags     |  payload[size] (at most 256)
 *  +---------------+---------------+---------------+------------------------
 *  flags: 0 = write to writable fields, 1 = live-migration restore
 * </pre>
 */
public final class ConfigLayout {
    public static final int OFFSET = 0;
    public static final int SIZE_FIELD = 4;
    public static final int FLAGS = 8;
    public static final int PAYLOAD = 12;
    /** {@code VHOST_USER_MAX_CONFIG_SIZE}. */
    public static final int MAX_CONFIG = 256;

    private ConfigLayout() {
    }

    public static int offset(ByteBuffer p) {
        return p.getInt(OFFSET);
    }

    public static int size(ByteBuffer p) {
        return p.getInt(SIZE_FIELD);
    }

    public static int flags(ByteBuffer p) {
        return p.getInt(FLAGS);
    }

    /** Copies the config bytes out (the size field was checked against the payload length). */
    public static byte[] bytes(ByteBuffer p) {
        byte[] b = new byte[size(p)];
        p.get(PAYLOAD, b);
        return b;
    }

    public static ByteBuffer of(int offset, int flags, byte[] bytes) {
        return Payloads.allocate(PAYLOAD + bytes.length).putInt(OFFSET, offset).putInt(SIZE_FIELD, bytes.length)
                .putInt(FLAGS, flags).put(PAYLOAD, bytes);
    }
}
