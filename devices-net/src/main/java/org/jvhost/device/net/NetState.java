package org.jvhost.device.net;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.jvhost.spi.DeviceState;

/**
 * What a net device hands to its successor at a hot upgrade: its TAP queues as fds (one per queue pair,
 * in pair order, so the TAP is never re-opened and its link never flaps) and, as data, the TAP's name and
 * the pair count to check them against, and the TUN offloads the kernel took when the TAP was opened
 * (so the successor need not probe them on the live TAP) (format {@value #FORMAT}, version {@value #VERSION}):
 *
 * <pre>
 *  0          2                2+n           6+n                 10+n
 *  +----------+----------------+-------------+-------------------+
 *  | n (u16)  | TAP name UTF-8 | pairs (i32) | TUN offloads (i32) |   big-endian
 *  +----------+----------------+-------------+-------------------+
 * </pre>
 *
 * Everything else the device negotiated (features, offloads, rings) comes back through the host's replay
 * of the connection; the counters start at zero in the new process.
 *
 * @param tapName  the TAP interface the fds belong to
 * @param pairs    queue pairs, one TAP fd each
 * @param offloads the TUN offload flags the kernel accepts on it ({@link Tap#supportedOffloads()})
 */
record NetState(String tapName, int pairs, int offloads) {
    static final String FORMAT = "org.jvhost.net";
    static final int VERSION = 1;

    /** The state of a device on {@code tap}; the fds stay {@code tap}'s (the host sends duplicates). */
    static DeviceState save(Tap tap) {
        byte[] name = tap.name().getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(2 + name.length + 8).putShort((short) name.length).put(name)
                .putInt(tap.queueCount()).putInt(tap.supportedOffloads());
        int[] fds = new int[tap.queueCount()];
        for (int q = 0; q < fds.length; q++) {
            fds[q] = tap.fd(q);
        }
        return new DeviceState(FORMAT, VERSION, b.array(), fds);
    }

    /**
     * Reads a state {@link #save} wrote.
     *
     * @throws IllegalArgumentException naming what is wrong: another format, a newer version, a truncated
     *                                  blob, or not one fd per pair
     */
    static NetState read(DeviceState state) {
        if (!FORMAT.equals(state.format()) || state.version() < 1 || state.version() > VERSION) {
            throw new IllegalArgumentException("cannot read device state " + state.format() + " v" + state.version()
                    + " (this net device reads " + FORMAT + " v1.." + VERSION + ")");
        }
        ByteBuffer b = ByteBuffer.wrap(state.data());
        NetState s;
        try {
            byte[] name = new byte[Short.toUnsignedInt(b.getShort())];
            b.get(name);
            s = new NetState(new String(name, StandardCharsets.UTF_8), b.getInt(), b.getInt());
        } catch (BufferUnderflowException e) {
            throw new IllegalArgumentException("device state " + state + " is truncated", e);
        }
        if (s.pairs < 1 || s.pairs != state.fds().length) {
            throw new IllegalArgumentException("device state " + state + " has " + state.fds().length
                    + " TAP fds for " + s.pairs + " queue pairs");
        }
        return s;
    }
}
