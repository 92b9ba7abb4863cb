package org.jvhost.engine.protocol;

import java.nio.ByteBuffer;

/**
 * Vring state ({@code struct vhost_vring_state}): SET_VRING_NUM, SET/GET_VRING_BASE, SET_VRING_ENABLE.
 * <pre>
 *  0               4               8
 *  +---------------+---------------+
 *  |     index     |      num      |
 *  +---------------+---------------+
 * </pre>
 */
public final class VringStateLayout {
    public static final int INDEX = 0;
    public static final int NUM = 4;
    public static final int SIZE = 8;

    private VringStateLayout() {
    }

    public static int index(ByteBuffer payload) {
        return payload.getInt(INDEX);
    }

    public static int num(ByteBuffer payload) {
        return payload.getInt(NUM);
    }

    public static ByteBuffer of(int index, int num) {
        return Payloads.allocate(SIZE).putInt(INDEX, index).putInt(NUM, num);
    }
}
