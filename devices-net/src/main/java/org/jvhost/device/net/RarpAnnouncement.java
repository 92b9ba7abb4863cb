package org.jvhost.device.net;

/**
 * The frame that tells a network where a guest is after a live migration (vhost-user SEND_RARP): a
 * broadcast RARP request (RFC 903) from the guest's MAC, which bridges and switches learn the guest's
 * new port from. QEMU sends the same frame itself for a guest on an emulated NIC.
 * <pre>
 *  0                 6                 12      14      16      18  19  20      22
 *  +-----------------+-----------------+-------+-------+-------+---+---+-------+
 *  | ff:ff:ff:ff:ff:ff|      mac        | 8035  | 0001  | 0800  | 6 | 4 | 0003  |
 *  +-----------------+-----------------+-------+-------+-------+---+---+-------+
 *  22                28        32                38        42                 60
 *  +-----------------+---------+-----------------+---------+-------------------+
 *  |  sender = mac   | 0.0.0.0 |  target = mac   | 0.0.0.0 |   zero padding    |
 *  +-----------------+---------+-----------------+---------+-------------------+
 *  ethernet: destination, source, type RARP; then hardware type Ethernet, protocol IPv4, address
 *  lengths, operation 3 (reverse request), and the addresses.
 * </pre>
 */
final class RarpAnnouncement {
    /** The shortest Ethernet frame (without FCS); the RARP fills 42 bytes of it. */
    static final int SIZE = 60;
    static final int ETHERTYPE_RARP = 0x8035;
    static final int OP_REVERSE_REQUEST = 3;

    private RarpAnnouncement() {
    }

    /** The announcement for the guest whose address is {@code mac} (6 bytes). */
    static byte[] frame(byte[] mac) {
        if (mac.length != 6) {
            throw new IllegalArgumentException("a MAC address has 6 bytes, not " + mac.length);
        }
        byte[] f = new byte[SIZE];
        java.util.Arrays.fill(f, 0, 6, (byte) 0xff);
        System.arraycopy(mac, 0, f, 6, 6);
        putShort(f, 12, ETHERTYPE_RARP);
        putShort(f, 14, 1); // hardware: Ethernet
        putShort(f, 16, 0x0800); // protocol: IPv4
        f[18] = 6;
        f[19] = 4;
        putShort(f, 20, OP_REVERSE_REQUEST);
        System.arraycopy(mac, 0, f, 22, 6);
        System.arraycopy(mac, 0, f, 32, 6);
        return f;
    }

    private static void putShort(byte[] f, int at, int value) {
        f[at] = (byte) (value >>> 8);
        f[at + 1] = (byte) value;
    }
}
