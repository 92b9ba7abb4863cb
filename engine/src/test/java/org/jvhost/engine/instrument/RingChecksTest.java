package org.jvhost.engine.instrument;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.jvhost.engine.virtq.SplitQueue;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.testkit.CountingNotifier;
import org.jvhost.testkit.MockSplitQueue;
import org.junit.jupiter.api.Test;

/**
 * Strict mode's kick rule with EVENT_IDX (virtio 1.2 §2.7.10.1), which the scripted-socket tests do not
 * reach: the driver must not kick while avail_event says no, and jvhost says no to a driver only while
 * the host polls the ring (avail_event one behind the next entry). The first two eventfd reads after the
 * suppression began are forgiven (kicks from before it, and one late kick), the rest are extra; a device
 * that merely turned kicks off leaves one more kick legal with EVENT_IDX, so nothing is counted then.
 */
class RingChecksTest {
    private static final int SIZE = 16;

    private final MockSplitQueue driver = MockSplitQueue.create(SIZE);
    private final SplitQueue queue = driver.deviceQueue(VirtioFeatures.RING_EVENT_IDX, new CountingNotifier());
    private final RecordingReporter reporter = new RecordingReporter();
    private final List<String> reports = reporter.reports;
    private final RingChecks checks = new RingChecks(queue, false, reporter);

    @Test
    void kicksPastAvailEventWhileTheHostPollsAreExtra() {
        serveOne();
        queue.setHostPolling(true);
        for (int read = 1; read <= 4; read++) {
            checks.kicked(1);
        }
        assertEquals(2, reporter.extraKicks, "reads 3 and 4 of the polling epoch");
        assertEquals(1, reports.size(), "reported once: " + reports);
        assertTrue(reports.get(0).startsWith("kick_while_suppressed: queue 0: 1 kick(s) on queue 0 while avail_event "
                + "was not passed"), reports.get(0));
    }

    @Test
    void withEventIdxADeviceThatTurnedKicksOffLeavesKicksLegal() {
        serveOne();
        queue.disableNotifications();
        for (int read = 1; read <= 5; read++) {
            checks.kicked(1);
        }
        assertEquals(0, reporter.extraKicks);
        assertEquals(List.of(), reports);
    }

    @Test
    void aKickRequestBetweenTwoPollingSpellsStartsTheGraceAgain() {
        serveOne();
        queue.setHostPolling(true);
        checks.kicked(1);
        checks.kicked(1);
        queue.setHostPolling(false); // kicks are requested again: a kick after this is wanted
        queue.setHostPolling(true);
        checks.kicked(1);
        checks.kicked(1);
        assertEquals(0, reporter.extraKicks, "two reads into each polling spell are late kicks, not extra ones");
        checks.kicked(3);
        assertEquals(3, reporter.extraKicks);
    }

    /** One chain made available, taken and returned, so the ring is in its steady state. */
    private void serveOne() {
        driver.addChain(new byte[][] {{1, 2, 3, 4}}, new int[0]);
        DescriptorChain chain = queue.newChain();
        checks.checkAvailIdx();
        assertTrue(queue.pop(chain));
        checks.popped(chain);
        queue.addUsed(chain, 0);
        checks.used(chain);
        queue.signalUsed();
    }
}
