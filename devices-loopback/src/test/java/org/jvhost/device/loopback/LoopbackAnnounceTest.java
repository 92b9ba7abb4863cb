package org.jvhost.device.loopback;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** SEND_RARP on a loopback card: there is no network to tell, so it is counted. */
class LoopbackAnnounceTest {
    @Test
    void announcementsAreCounted() {
        LoopbackDevice device = new LoopbackDevice("x", new LoopbackConfig(new byte[] {0x52, 0x54, 0, 0, 0, 1}, 1, false));
        assertTrue(device.canAnnounce());
        assertEquals(0L, device.counters().get("announcements"));
        device.announce(new byte[] {0x52, 0x54, 0, 0x12, 0x34, 0x56});
        device.announce(new byte[] {0x52, 0x54, 0, 0x12, 0x34, 0x56});
        assertEquals(2L, device.counters().get("announcements"));
    }
}
