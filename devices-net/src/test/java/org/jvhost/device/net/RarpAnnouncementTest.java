package org.jvhost.device.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.spi.virtio.VirtioNet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** SEND_RARP: the net device broadcasts a RARP with the guest's MAC out of its TAP. */
@Timeout(10)
class RarpAnnouncementTest {
    private static final byte[] MAC = {0x52, 0x54, 0, 0x12, 0x34, 0x56};

    @Test
    void theFrameIsABroadcastReverseRequestFromTheGuest() {
        byte[] f = RarpAnnouncement.frame(MAC);
        byte[] expected = new byte[60];
        byte[] head = {
            -1, -1, -1, -1, -1, -1, 0x52, 0x54, 0, 0x12, 0x34, 0x56, (byte) 0x80, 0x35, // ethernet, RARP
            0, 1, 8, 0, 6, 4, 0, 3, // Ethernet/IPv4, lengths, reverse request
            0x52, 0x54, 0, 0x12, 0x34, 0x56, 0, 0, 0, 0, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0, 0, 0, 0};
        System.arraycopy(head, 0, expected, 0, head.length);
        assertArrayEquals(expected, f);
    }

    @Test
    void theDeviceSendsItOutOfItsTapBehindAZeroHeader() throws Exception {
        try (SocketPairTap tap = new SocketPairTap(1, 0)) {
            NetDevice device = new NetDevice("net@test", new NetConfig("t", null, null, 0, 1, NetConfig.Uring.AUTO),
                    tap, new RecordingContext());
            assertTrue(device.canAnnounce());
            device.ackFeatures(VirtioFeatures.VERSION_1);
            device.announce(MAC);
            byte[] sent = tap.receive(0);
            int header = VirtioNet.headerLength(VirtioFeatures.VERSION_1);
            assertEquals(header + 60, sent.length);
            assertArrayEquals(new byte[header], Arrays.copyOf(sent, header));
            assertArrayEquals(RarpAnnouncement.frame(MAC), Arrays.copyOfRange(sent, header, sent.length));
            assertNull(tap.receive(0), "one frame");
        }
    }
}
