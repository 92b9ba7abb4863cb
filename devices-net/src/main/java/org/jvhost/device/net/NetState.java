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
 *  +----------+----------------+-------------+-------------------+--------------------------+
 *  | n (u16)  | TAP name UTF-8 | pairs (i32) | TUN offloads (i32) | device part (v2, or none) |   big-endian
 *  +----------+----------------+-------------+-------------------+--------------------------+
 * </pre>
 *
 * Version 2 adds the device part, in the state saved once the rings are paused (not in the resources an
 * early device is created with): how the driver steers (its VQ_PAIRS_SET count, 0 if it never sent one)
 * and which TAP queues are attached, so the successor changes no attachment before its rings run, and the
 * counters, so they carry on:
 * <pre>
 *  +--------------------+----------------------+---------------------+------------------------------+-------------+
 *  | driver pairs (i32) | counters per pair P  | control counters C  | per pair: attached (u8),     | C x i64     |
 *  |                    | (i32)                | (i32)               | P x i64 ({@link PairDataPath#COUNTER_NAMES}) | ({@link ControlQueue#COUNTER_NAMES}) |
 *  +--------------------+----------------------+---------------------+------------------------------+-------------+
 * </pre>
 * A reader takes the counters it knows by position (names are only ever appended) and ignores the rest.
 * Everything else the device negotiated (features, offloads, rings) comes back through the host's replay
 * of the connection.
 *
 * @param tapName  the TAP interface the fds belong to
 * @param pairs    queue pairs, one TAP fd each
 * @param offloads the TUN offload flags the kernel accepts on it ({@link Tap#supportedOffloads()})
 * @param device   the device part, or null (resources, or a version-1 state)
 */
record NetState(String tapName, int pairs, int offloads, Device device) {
    static final String FORMAT = "org.jvhost.net";
    static final int VERSION = 2;

    /**
     * The device part: the driver's VQ_PAIRS_SET count, which TAP queues are attached, each pair's
     * counters and the control queue's.
     */
    record Device(int driverPairs, boolean[] attached, long[][] pairCounters, long[] controlCounters) {
    }

    /** The resources of a device on {@code tap} (no device part); the fds stay {@code tap}'s (the host sends duplicates). */
    static DeviceState save(Tap tap) {
        return save(tap, null);
    }

    /** The state of a device on {@code tap} with its {@code device} part (null for none). */
    static DeviceState save(Tap tap, Device device) {
        byte[] name = tap.name().getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(2 + name.length + 8 + (device == null ? 0 : deviceBytes(device)))
                .putShort((short) name.length).put(name).putInt(tap.queueCount()).putInt(tap.supportedOffloads());
        if (device != null) {
            int perPair = device.pairCounters.length == 0 ? 0 : device.pairCounters[0].length;
            b.putInt(device.driverPairs).putInt(perPair).putInt(device.controlCounters.length);
            for (int p = 0; p < device.attached.length; p++) {
                b.put((byte) (device.attached[p] ? 1 : 0));
                for (long v : device.pairCounters[p]) {
                    b.putLong(v);
                }
            }
            for (long v : device.controlCounters) {
                b.putLong(v);
            }
        }
        int[] fds = new int[tap.queueCount()];
        for (int q = 0; q < fds.length; q++) {
            fds[q] = tap.fd(q);
        }
        return new DeviceState(FORMAT, VERSION, b.array(), fds);
    }

    private static int deviceBytes(Device d) {
        int perPair = d.pairCounters.length == 0 ? 0 : d.pairCounters[0].length;
        return 12 + d.attached.length * (1 + 8 * perPair) + 8 * d.controlCounters.length;
    }

    /**
     * Reads a state {@link #save} wrote (version 1 or 2).
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
            String tap = new String(name, StandardCharsets.UTF_8);
            int pairs = b.getInt();
            int offloads = b.getInt();
            Device device = state.version() >= 2 && b.hasRemaining() ? readDevice(b, pairs) : null;
            s = new NetState(tap, pairs, offloads, device);
        } catch (BufferUnderflowException | NegativeArraySizeException e) {
            throw new IllegalArgumentException("device state " + state + " is truncated", e);
        }
        if (s.pairs < 1 || s.pairs != state.fds().length) {
            throw new IllegalArgumentException("device state " + state + " has " + state.fds().length
                    + " TAP fds for " + s.pairs + " queue pairs");
        }
        return s;
    }

    private static Device readDevice(ByteBuffer b, int pairs) {
        int driverPairs = b.getInt();
        int perPair = b.getInt();
        int control = b.getInt();
        if (pairs < 1 || perPair < 0 || control < 0 || (long) pairs * (1 + 8L * perPair) + 8L * control > b.remaining()) {
            throw new BufferUnderflowException();
        }
        boolean[] attached = new boolean[pairs];
        long[][] counters = new long[pairs][perPair];
        for (int p = 0; p < pairs; p++) {
            attached[p] = b.get() != 0;
            for (int i = 0; i < perPair; i++) {
                counters[p][i] = b.getLong();
            }
        }
        long[] ctrl = new long[control];
        for (int i = 0; i < control; i++) {
            ctrl[i] = b.getLong();
        }
        return new Device(driverPairs, attached, counters, ctrl);
    }
}
