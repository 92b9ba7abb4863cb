package org.jvhost.device.loopback;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.ByteBuffer;
import org.jvhost.spi.DeviceState;
import org.junit.jupiter.api.Test;

/** The loopback's state across a hot upgrade: its counters, in a versioned blob a later version can read. */
class LoopbackStateTest {
    private static final byte[] MAC = {0x52, 0x54, 0, 0x12, 0x34, 0x56};

    private static LoopbackDevice device(int pairs) {
        return new LoopbackDevice("loopback@state", new LoopbackConfig(MAC, pairs, false));
    }

    /** A v1 blob as an old plugin writes it: every counter of pair i is 1000 * (i + 1) + slot. */
    private static byte[] blob(int pairs, int countersPerPair, long announcements) {
        ByteBuffer b = ByteBuffer.allocate(4 + pairs * (4 + 8 * countersPerPair) + 8);
        b.putInt(pairs);
        for (int i = 0; i < pairs; i++) {
            b.putInt(countersPerPair);
            for (int slot = 0; slot < countersPerPair; slot++) {
                b.putLong(1000L * (i + 1) + slot);
            }
        }
        return b.putLong(announcements).array();
    }

    @Test
    void countersCarryOverToTheNextProcess() {
        LoopbackDevice old = device(2);
        old.restoreState(new DeviceState(LoopbackDevice.STATE_FORMAT, 1, blob(2, FrameReflector.COUNTER_NAMES.length, 3)));
        LoopbackDevice fresh = device(2);
        fresh.restoreState(old.saveState());
        assertEquals(old.counters(), fresh.counters());
        assertEquals(3L, fresh.counters().get("announcements"));
        assertEquals(old.queueCounters(3), fresh.queueCounters(3));
    }

    @Test
    void aStateWithMoreCountersOrPairsThanThisVersionKnowsKeepsTheKnownOnes() {
        int known = FrameReflector.COUNTER_NAMES.length;
        LoopbackDevice d = device(1);
        d.restoreState(new DeviceState(LoopbackDevice.STATE_FORMAT, 1, blob(2, known + 2, 7)));
        for (int slot = 0; slot < known; slot++) {
            String name = FrameReflector.COUNTER_NAMES[slot];
            long sum = 1000L + slot;
            assertEquals(sum, d.counters().get(name), name);
        }
        assertEquals(7L, d.counters().get("announcements"));
    }

    @Test
    void anotherFormatANewerVersionOrATruncatedStateIsRefused() {
        LoopbackDevice d = device(1);
        byte[] ok = blob(1, FrameReflector.COUNTER_NAMES.length, 0);
        assertThrows(IllegalArgumentException.class, () -> d.restoreState(new DeviceState("org.example.other", 1, ok)));
        assertThrows(IllegalArgumentException.class,
                () -> d.restoreState(new DeviceState(LoopbackDevice.STATE_FORMAT, LoopbackDevice.STATE_VERSION + 1, ok)));
        byte[] cut = java.util.Arrays.copyOf(ok, ok.length - 4);
        assertThrows(IllegalArgumentException.class,
                () -> d.restoreState(new DeviceState(LoopbackDevice.STATE_FORMAT, 1, cut)));
    }
}
