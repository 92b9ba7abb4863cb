package org.jvhost.device.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.jna.LastErrorException;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.DeviceState;
import org.jvhost.spi.InvalidOptionException;
import org.jvhost.spi.OptionSpec;
import org.junit.jupiter.api.Test;

/** The net device's hot-upgrade state: its TAP fds with the TAP's name and pair count. */
class NetStateTest {

    @Test
    void savesTheTapQueuesAsFdsAndReadsThemBack() {
        try (SocketPairTap tap = new SocketPairTap(2, 0)) {
            DeviceState s = NetState.save(tap);
            assertEquals(NetState.FORMAT, s.format());
            assertArrayEquals(new int[] {tap.fd(0), tap.fd(1)}, s.fds());
            assertEquals(new NetState("fake-tap", 2, tap.supportedOffloads(), null), NetState.read(s));
        }
    }

    @Test
    void otherFormatsNewerVersionsTruncatedBlobsAndMissingFdsAreRefused() {
        byte[] data = {0, 3, 't', 'a', 'p', 0, 0, 0, 1, 0, 0, 0, 0};
        assertTrue(refused(new DeviceState("org.jvhost.loopback", 1, data, 5)).contains("org.jvhost.loopback v1"));
        assertTrue(refused(new DeviceState(NetState.FORMAT, 3, data, 5)).contains("v1..2"));
        assertTrue(refused(new DeviceState(NetState.FORMAT, 2, concat(data, new byte[] {0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 0}), 5))
                .contains("truncated"), "a device part promising more counters than it has");
        assertEquals(new NetState("tap", 1, 0, null), NetState.read(new DeviceState(NetState.FORMAT, 1, data, 5)),
                "version 1 (no device part) is still read");
        assertTrue(refused(new DeviceState(NetState.FORMAT, 1, Arrays.copyOf(data, 10), 5)).contains("truncated"));
        assertTrue(refused(new DeviceState(NetState.FORMAT, 1, data)).contains("0 TAP fds for 1 queue pairs"));
    }

    /**
     * Two queue pairs across a hot upgrade: the device the successor creates in the first phase, while the
     * previous process still serves both pairs, attaches or detaches no TAP queue (a fresh device detaches
     * the idle pair 1 at once); the state saved after the pause brings the steering, which the restore
     * takes without touching the TAP either, and the counters, which carry on.
     */
    @Test
    void aDeviceOnAHandedOverTapChangesNoTapQueueAndCarriesTheCountersOn() {
        NetConfig config = new NetConfig("t", null, null, 0, 2, NetConfig.Uring.OFF);
        try (SocketPairTap tap = new SocketPairTap(2, 0)) {
            NetDevice successor = new NetDevice("net@new", config, tap, new RecordingContext(), true);
            assertArrayEquals(new boolean[] {true, true}, tap.attached, "the first phase changes no attachment");
            long[] pair0 = new long[PairDataPath.COUNTER_NAMES.length];
            pair0[0] = 7;
            long[] pair1 = new long[PairDataPath.COUNTER_NAMES.length];
            pair1[0] = 5;
            DeviceState saved = NetState.save(tap, new NetState.Device(2, new boolean[] {true, true},
                    new long[][] {pair0, pair1}, new long[] {3, 0, 0}));
            NetState read = NetState.read(saved);
            assertEquals(2, read.device().driverPairs());
            assertArrayEquals(pair1, read.device().pairCounters()[1]);
            successor.restoreState(new DeviceState(saved.format(), saved.version(), saved.data(),
                    LinuxTap.duplicate(saved.fds())));
            assertArrayEquals(new boolean[] {true, true}, tap.attached, "nor does the restore");
            assertEquals(12L, successor.counters().get("tx_frames"));
            assertEquals(3L, successor.counters().get("ctrl_commands"));
            NetState again = NetState.read(successor.saveState());
            assertArrayEquals(new long[] {3, 0, 0}, again.device().controlCounters(), "and go on to the next process");

            new NetDevice("net@fresh", config, tap, new RecordingContext());
            assertArrayEquals(new boolean[] {true, false}, tap.attached, "a fresh device detaches the idle pair");
        }
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] r = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }

    private static String refused(DeviceState s) {
        return assertThrows(IllegalArgumentException.class, () -> NetState.read(s)).getMessage();
    }

    /**
     * A state that does not fit the configuration (another TAP, fds that are no TAP) makes create fail
     * with the option and the reason, and leaves the state's fds open: they are still the host's.
     */
    @Test
    void createRefusesAHandedOverTapThatDoesNotFitAndLeavesItsFdsAlone() throws Exception {
        try (SocketPairTap tap = new SocketPairTap(1, 0)) {
            DeviceState s = NetState.save(tap);
            InvalidOptionException other = assertThrows(InvalidOptionException.class,
                    () -> new NetProvider().create(options("tap", "jv0"), context(s)));
            assertEquals("tap", other.key());
            assertTrue(other.getMessage().contains("hands over TAP fake-tap with 1 queue pair(s)"), other.getMessage());
            InvalidOptionException notTap = assertThrows(InvalidOptionException.class,
                    () -> new NetProvider().create(options("tapfd", "3"), context(s)));
            assertTrue(notTap.getMessage().contains("the TAP the previous jvhost handed over: tapfd"), notTap.getMessage());
            assertTrue(isOpen(tap.fd(0)), "the state's fd is still open");
        }
    }

    /** restoreState refuses a state of another TAP (the host then closes its fds) and closes a fitting one's. */
    @Test
    void restoreStateChecksTheTapAndClosesTheStateFds() {
        try (SocketPairTap tap = new SocketPairTap(1, 0); SocketPairTap other = new SocketPairTap(2, 0)) {
            NetDevice device = new NetDevice("net@test", new NetConfig("t", null, null, 0, 1, NetConfig.Uring.OFF), tap,
                    new RecordingContext());
            String wrong = assertThrows(IllegalArgumentException.class,
                    () -> device.restoreState(NetState.save(other))).getMessage();
            assertTrue(wrong.contains("TAP fake-tap (2 queue pairs) is not this device's"), wrong);
            int dup = LinuxTap.duplicate(new int[] {tap.fd(0)})[0];
            device.restoreState(new DeviceState(NetState.FORMAT, 1, NetState.save(tap).data(), dup));
            assertTrue(!isOpen(dup), "the state's fd was closed once restored");
            assertTrue(isOpen(tap.fd(0)), "the device's own fd stays open");
        }
    }

    private static boolean isOpen(int fd) {
        try {
            TapNatives.fcntl(fd, TapNatives.F_GETFL, 0);
            return true;
        } catch (LastErrorException e) {
            return false;
        }
    }

    private static DeviceContext context(DeviceState handed) {
        return new DeviceContext() {
            @Override
            public String deviceName() {
                return "net@test";
            }

            @Override
            public DeviceState handedOverState() {
                return handed;
            }
        };
    }

    /** The declared defaults, overridden by {@code given}. */
    private static DeviceOptions options(String... given) {
        Map<String, String> values = new HashMap<>();
        for (OptionSpec o : new NetProvider().options()) {
            if (o.defaultValue() != null) {
                values.put(o.name(), o.defaultValue());
            }
        }
        for (int i = 0; i < given.length; i += 2) {
            values.put(given[i], given[i + 1]);
        }
        return new DeviceOptions(values);
    }
}
