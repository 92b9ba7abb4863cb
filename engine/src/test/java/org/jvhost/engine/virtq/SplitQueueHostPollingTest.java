package org.jvhost.engine.virtq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.TimeUnit;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.testkit.CountingNotifier;
import org.jvhost.testkit.MockSplitQueue;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@link SplitQueue#setHostPolling}: while the worker polls, the driver is told not to kick whatever the
 * device's processing loop asks for; when polling ends, the device's last request comes back, fenced.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class SplitQueueHostPollingTest {
    private static final int SIZE = 16;

    private final MockSplitQueue driver = MockSplitQueue.create(SIZE);

    private static int ping(MockSplitQueue driver) {
        return driver.addChain(new byte[][] {{1, 2, 3, 4}}, new int[] {16});
    }

    /** The device's processing loop of the Virtqueue Javadoc; returns the chains it served. */
    private static int serve(SplitQueue queue, DescriptorChain chain) {
        int served = 0;
        do {
            queue.disableNotifications();
            while (queue.pop(chain)) {
                queue.addUsed(chain, 0);
                served++;
            }
            queue.signalUsed();
        } while (queue.enableNotifications());
        return served;
    }

    /** Whether a driver publishing {@code newIdx} after {@code oldIdx} would kick (EVENT_IDX, 2.7.10). */
    private boolean driverWouldKick(int newIdx, int oldIdx) {
        return SplitEventSuppression.needEvent(driver.availEvent(), newIdx, oldIdx);
    }

    @Test
    void withoutEventIdxPollingSetsNoNotifyAndTheDeviceLoopLeavesItSet() {
        SplitQueue queue = driver.deviceQueue(0, new CountingNotifier());
        DescriptorChain chain = queue.newChain();
        ping(driver);
        assertEquals(1, serve(queue, chain));
        assertEquals(0, driver.usedFlags(), "the device loop asks for kicks when it is done");

        queue.setHostPolling(true);
        assertEquals(UsedRingLayout.F_NO_NOTIFY, driver.usedFlags());
        ping(driver);
        ping(driver);
        assertEquals(2, serve(queue, chain));
        assertEquals(UsedRingLayout.F_NO_NOTIFY, driver.usedFlags(),
                "enableNotifications while the host polls must not invite kicks");
        ping(driver);
        assertTrue(queue.enableNotifications(), "enableNotifications still reports buffers made available");
        assertEquals(UsedRingLayout.F_NO_NOTIFY, driver.usedFlags());
        assertEquals(1, serve(queue, chain));

        queue.setHostPolling(false);
        assertEquals(0, driver.usedFlags(), "polling over: kicks are requested again");
        assertFalse(queue.isHostPolling());
    }

    @Test
    void withEventIdxPollingPutsAvailEventWhereTheDriverNeverPassesIt() {
        SplitQueue queue = driver.deviceQueue(VirtioFeatures.RING_EVENT_IDX, new CountingNotifier());
        DescriptorChain chain = queue.newChain();
        ping(driver);
        assertEquals(1, serve(queue, chain));
        assertEquals(1, driver.availEvent(), "after the loop the driver kicks for the next entry");
        assertTrue(driverWouldKick(2, 1));

        queue.setHostPolling(true);
        for (int round = 0; round < 3; round++) {
            // a whole ring's worth per round: the driver never crosses avail_event
            for (int i = 0; i < SIZE; i++) {
                int old = driver.availIdx();
                ping(driver);
                assertFalse(driverWouldKick(driver.availIdx(), old),
                        "kick suppressed at avail idx " + driver.availIdx() + ", avail_event " + driver.availEvent());
            }
            assertEquals(SIZE, serve(queue, chain));
        }
        queue.setHostPolling(false);
        assertEquals(queue.nextAvail(), driver.availEvent(), "polling over: kick for the next entry again");
        int old = driver.availIdx();
        ping(driver);
        assertTrue(driverWouldKick(driver.availIdx(), old));
    }

    @Test
    void endingPollingLeavesKicksOffForADeviceThatTurnedThemOff() {
        SplitQueue queue = driver.deviceQueue(0, new CountingNotifier());
        queue.disableNotifications(); // a device that never wants kicks on this queue (the loopback's RX)
        queue.setHostPolling(true);
        queue.setHostPolling(false);
        assertEquals(UsedRingLayout.F_NO_NOTIFY, driver.usedFlags());
        assertFalse(queue.deviceWantsKicks());
    }

    @Test
    void availIndexFollowsTheDriverAndABufferPublishedBeforePollingEndsIsSeenAfterwards() {
        SplitQueue queue = driver.deviceQueue(0, new CountingNotifier());
        DescriptorChain chain = queue.newChain();
        queue.setHostPolling(true);
        ping(driver);
        assertEquals(1, serve(queue, chain));
        int seen = queue.availIndex();
        ping(driver); // the driver saw NO_NOTIFY, so it did not kick
        queue.setHostPolling(false);
        assertEquals(0, driver.usedFlags());
        assertTrue(queue.availIndex() != seen, "the re-check after re-enabling sees the buffer");
        assertEquals(1, serve(queue, chain));
    }

    @Test
    void aBrokenQueueIsNotWrittenAndReportsItsLastIndex() {
        SplitQueue queue = driver.deviceQueue(0, new CountingNotifier());
        DescriptorChain chain = queue.newChain();
        ping(driver);
        assertEquals(1, serve(queue, chain));
        driver.setAvailIdx(driver.availIdx() + SIZE + 1); // impossible jump: the queue breaks
        assertFalse(queue.pop(chain));
        assertTrue(queue.isBroken());
        queue.setHostPolling(true);
        assertEquals(0, driver.usedFlags(), "a broken queue writes nothing");
        assertEquals(1, queue.availIndex(), "a broken queue no longer reads avail->idx");
    }
}
