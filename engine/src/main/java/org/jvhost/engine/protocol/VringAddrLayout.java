package org.jvhost.engine.protocol;

import java.nio.ByteBuffer;

/**
 * Vring address ({@code struct vhost_vring_addr}), SET_VRING_ADDR. Addresses are front-end virtual
 * addresses (user addresses), translated through the memory table.
 * <pre>
 *  0               4               8                               16
 *  +---------------+---------------+-------------------------------+
 *  |     index     |     flags     |        desc_user_addr         |
 *  +---------------+---------------+-------------------------------+
 *  16                              24                              32
 *  +-------------------------------+-------------------------------+
 *  |        used_user_addr         |        avail_user_addr        |
 *  +-------------------------------+-------------------------------+
 *  32                              40
 *  +-------------------------------+
 *  |        log_guest_addr         |
 *  +-------------------------------+
 *  flags bit 0: VHOST_VRING_F_LOG (log used-ring writes at log_guest_addr while VHOST_F_LOG_ALL is on)
 * </pre>
 */
public final class VringAddrLayout {
    public static final int INDEX = 0;
    public static final int FLAGS = 4;
    public static final int DESC = 8;
    public static final int USED = 16;
    public static final int AVAIL = 24;
    public static final int LOG = 32;
    public static final int SIZE = 40;
    public static final int F_LOG = 0x1;

    private VringAddrLayout() {
    }

    public static int index(ByteBuffer p) {
        return p.getInt(INDEX);
    }

    public static int flags(ByteBuffer p) {
        return p.getInt(FLAGS);
    }

    public static long desc(ByteBuffer p) {
        return p.getLong(DESC);
    }

    public static long used(ByteBuffer p) {
        return p.getLong(USED);
    }

    public static long avail(ByteBuffer p) {
        return p.getLong(AVAIL);
    }

    public static long log(ByteBuffer p) {
        return p.getLong(LOG);
    }

    public static ByteBuffer of(int index, int flags, long desc, long used, long avail, long log) {
        return Payloads.allocate(SIZE).putInt(INDEX, index).putInt(FLAGS, flags)
                .putLong(DESC, desc).putLong(USED, used).putLong(AVAIL, avail).putLong(LOG, log);
    }
}
