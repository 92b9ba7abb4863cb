package org.jvhost.engine.protocol;

/**
 * {@code VHOST_USER_PROTOCOL_F_*} bits (spec "Protocol features") as masks. Only the ones jvhost
 * implements are offered; the rest are here so negotiation logs can name them.
 */
public final class ProtocolFeatures {
    public static final long MQ = 1L << 0;
    public static final long LOG_SHMFD = 1L << 1;
    public static final long RARP = 1L << 2;
    public static final long REPLY_ACK = 1L << 3;
    public static final long NET_MTU = 1L << 4;
    public static final long BACKEND_REQ = 1L << 5;
    public static final long CROSS_ENDIAN = 1L << 6;
    public static final long CRYPTO_SESSION = 1L << 7;
    public static final long PAGEFAULT = 1L << 8;
    public static final long CONFIG = 1L << 9;
    public static final long BACKEND_SEND_FD = 1L << 10;
    public static final long HOST_NOTIFIER = 1L << 11;
    public static final long INFLIGHT_SHMFD = 1L << 12;
    public static final long RESET_DEVICE = 1L << 13;
    public static final long INBAND_NOTIFICATIONS = 1L << 14;
    public static final long CONFIGURE_MEM_SLOTS = 1L << 15;
    public static final long STATUS = 1L << 16;

    /** What jvhost implements for every device; CONFIG is added for devices with a config space. */
    public static final long IMPLEMENTED = MQ | LOG_SHMFD | REPLY_ACK | CONFIGURE_MEM_SLOTS | RESET_DEVICE | STATUS;

    private ProtocolFeatures() {
    }
}
