package org.jvhost.engine.instrument;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.jvhost.engine.virtq.PackedQueue;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.testkit.CountingNotifier;
import org.jvhost.testkit.MockPackedQueue;
import org.junit.jupiter.api.Test;

/**
 * Strict mode on a packed ring ({@link RingChecks}, "Packed rings"): a transmit buffer with device-writable
 * parts and kicks while the device event suppression says DISABLE are reported, with EVENT_IDX too (a
 * packed ring's disable is DISABLE, not an event index); the avail-index rules do not apply. The ring is
 * 12 entries, not a power of two, and goes round more than once.
 */
class PackedRingChecksTest {
    private static final int SIZE = 12;

    private final MockPackedQueue driver = MockPackedQueue.create(SIZE);
    private final PackedQueue queue = driver.deviceQueue(VirtioFeatures.RING_EVENT_IDX, new CountingNotifier());
    private final RecordingReporter reporter = new RecordingReporter();
    private final List<String> reports = reporter.reports;

    private RingChecks checks(boolean transmit) {
        return new RingChecks(queue, transmit, reporter);
    }

    @Test
    void aTransmitBufferWithDeviceWritablePartsIsReportedOnce() {
        RingChecks checks = checks(true);
        for (int i = 0; i < 3 * SIZE; i++) { // round the ring three times, one buffer at a time
            driver.addChain(new byte[][] {{1, 2, 3, 4}}, i % 5 == 0 ? new int[] {64} : new int[0]);
            serve(checks);
        }
        assertEquals(1, reports.size(), "reported once: " + reports);
        assertTrue(reports.get(0).startsWith("tx_device_writable: queue 0: chain at head 0 on transmit queue 0 has 64 "
                + "device-writable bytes"), reports.get(0));
        assertFalse(queue.isBroken(), queue.brokenReason());
    }

    @Test
    void kicksAfterTheDeviceTurnedThemOffAreExtraWithEventIdxToo() {
        RingChecks checks = checks(false);
        driver.addChain(new byte[][] {{1}}, new int[0]);
        serve(checks);
        queue.disableNotifications(); // DISABLE in the device event suppression area
        for (int read = 1; read <= 4; read++) {
            checks.kicked(1);
        }
        assertEquals(2, reporter.extraKicks, "reads 3 and 4 after the suppression began");
        assertEquals(1, reports.size(), "reported once: " + reports);
        assertTrue(reports.get(0).startsWith("kick_while_suppressed: queue 0: 1 kick(s) on queue 0 while the packed "
                + "ring's device event suppression said DISABLE"), reports.get(0));
    }

    @Test
    void kicksWhileTheDeviceWantsThemAreNotCounted() {
        RingChecks checks = checks(false);
        driver.addChain(new byte[][] {{1}}, new int[0]);
        serve(checks);
        assertFalse(queue.enableNotifications());
        for (int read = 1; read <= 4; read++) {
            checks.kicked(1);
        }
        assertEquals(0, reporter.extraKicks);
        assertEquals(List.of(), reports);
    }

    /** Takes the next buffer as InstrumentedQueue does (avail check, pop, popped) and returns it. */
    private void serve(RingChecks checks) {
        DescriptorChain chain = queue.newChain();
        checks.checkAvailIdx();
        assertTrue(queue.pop(chain));
        checks.popped(chain);
        queue.addUsed(chain, 0);
        checks.used(chain);
        queue.signalUsed();
        assertTrue(driver.pollUsed() != null, "the device returned the buffer");
    }
}
