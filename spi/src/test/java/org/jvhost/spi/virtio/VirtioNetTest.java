package org.jvhost.spi.virtio;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 10, unit = TimeUnit.SECONDS)
class VirtioNetTest {

    @Test
    void configSpaceIsLittleEndianWithLinkUp() {
        byte[] mac = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
        assertArrayEquals(new byte[] {0x52, 0x54, 0, 0x12, 0x34, 0x56, 1, 0, 2, 0, 0x28, 0x23},
                VirtioNet.configSpace(mac, 2, 9000));
        assertArrayEquals(new byte[] {0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0}, VirtioNet.configSpace(null, 1, 0),
                "no MAC and no MTU: zeros, the layout stays");
        assertThrows(IllegalArgumentException.class, () -> VirtioNet.configSpace(new byte[5], 1, 0));
        assertThrows(IllegalArgumentException.class, () -> VirtioNet.configSpace(null, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> VirtioNet.configSpace(null, 1, 65536));
    }

    @Test
    void theControlQueueIsLastAndDependsOnMq() {
        assertEquals(-1, VirtioNet.controlQueueIndex(VirtioNet.F_MQ, 4), "no CTRL_VQ, no control queue");
        assertEquals(8, VirtioNet.controlQueueIndex(VirtioNet.F_CTRL_VQ | VirtioNet.F_MQ, 4));
        assertEquals(2, VirtioNet.controlQueueIndex(VirtioNet.F_CTRL_VQ, 4), "without MQ: N = 1 (5.1.2)");
    }

    @Test
    void transmitQueuesAreTheOddIndicesAndTheControlQueueIsNotOne() {
        assertTrue(VirtioNet.isTxQueue(1));
        assertTrue(VirtioNet.isTxQueue(7));
        assertFalse(VirtioNet.isTxQueue(0));
        assertFalse(VirtioNet.isTxQueue(VirtioNet.controlQueueIndex(VirtioNet.F_CTRL_VQ | VirtioNet.F_MQ, 4)));
        assertFalse(VirtioNet.isTxQueue(VirtioNet.controlQueueIndex(VirtioNet.F_CTRL_VQ, 4)));
    }

    @Test
    void macsFormatAsDeviceOptionsParseThem() {
        assertEquals("02:00:0a:ff:00:01", VirtioNet.formatMac(new byte[] {2, 0, 10, (byte) 0xff, 0, 1}));
    }
}
