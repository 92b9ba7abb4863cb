package org.jvhost.engine.session;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import org.jvhost.engine.device.DeviceRuntime;
import org.jvhost.engine.event.Polling;
import org.jvhost.engine.event.Worker;
import org.jvhost.engine.event.WorkerPool;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.virtq.SplitQueue;
import org.jvhost.engine.virtq.UsedRingLayout;
import org.jvhost.spi.Completion;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.spi.Virtqueue;
import org.jvhost.testkit.CountingNotifier;
import org.jvhost.testkit.MockSplitQueue;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Adaptive busy-polling of a started ring on a real worker thread: a kick that found work makes the
 * worker poll the ring with kicks suppressed, buffers published meanwhile are served without a kick,
 * and when polling ends kicks are re-armed without stranding a buffer published just before.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class RingPollingTest {
    private static final int SIZE = 16;

    private final MockSplitQueue driver = MockSplitQueue.create(SIZE);
    private final ServingDevice device = new ServingDevice();
    private WorkerPool pool;
    private Worker worker;
    private DeviceRuntime runtime;
    private SplitQueue queue;
    private Ring ring;
    private int kickFd = -1;
    private final CountingNotifier calls = new CountingNotifier();

    /** Serves queue 0 with the Virtqueue processing loop, counting kicks and chains. */
    private static final class ServingDevice implements VhostUserDevice {
        final AtomicInteger kicks = new AtomicInteger();
        /** handleKick calls that have returned; equal to {@link #kicks} when no call is running. */
        final AtomicInteger returned = new AtomicInteger();
        final AtomicInteger served = new AtomicInteger();
        /** Turn kicks off for good at start, as the loopback does on its RX queue. */
        volatile boolean noKicks;
        /** Posted (on the worker) once, when the first callback that served a chain returns, if set. */
        volatile Runnable afterServing;
        Worker worker;
        /** Complete each chain later ({@link Completion}) instead of with addUsed: inline, or held for the test. */
        volatile Defer defer = Defer.NO;
        /** The chains held (Defer.HOLD), for the test to complete from its own thread. */
        final java.util.concurrent.BlockingQueue<Completion> held = new java.util.concurrent.LinkedBlockingQueue<>();
        private Virtqueue queue;
        private DescriptorChain chain;

        @Override public int deviceType() { return 1; }
        @Override public int maxQueues() { return 1; }
        @Override public long features() { return 0; }
        @Override public void ackFeatures(long acked) { }
        @Override public int configSize() { return 0; }
        @Override public void readConfig(int offset, byte[] dst) { }
        @Override public void reset() { }

        @Override
        public void startQueue(int queueIndex, Virtqueue q) {
            queue = q;
            chain = q.newChain();
            if (noKicks) {
                q.disableNotifications();
            }
        }

        @Override
        public void handleKick(int queueIndex) {
            kicks.incrementAndGet();
            try {
                serve();
            } finally {
                returned.incrementAndGet();
                Runnable after = afterServing;
                if (after != null && served.get() > 0) {
                    afterServing = null;
                    worker.post(after); // runs after the callback, before the worker can idle
                }
            }
        }

        private void serve() {
            if (noKicks) {
                while (queue.pop(chain)) {
                    queue.addUsed(chain, 0);
                    served.incrementAndGet();
                }
                queue.signalUsed();
                return;
            }
            do {
                queue.disableNotifications();
                while (queue.pop(chain)) {
                    switch (defer) {
                        case NO -> queue.addUsed(chain, 0);
                        case INLINE -> queue.defer(chain).complete(0); // as a page-cache read on io_uring
                        case HOLD -> held.add(queue.defer(chain));
                    }
                    served.incrementAndGet();
                }
                queue.signalUsed();
            } while (queue.enableNotifications());
        }

        @Override
        public Virtqueue stopQueue(int queueIndex) {
            Virtqueue q = queue;
            queue = null;
            return q;
        }
    }

    private enum Defer { NO, INLINE, HOLD }

    private void start(int pollMicros, long features) throws Exception {
        start(Polling.startingAt(pollMicros), features);
    }

    private void start(Polling polling, long features) throws Exception {
        pool = new WorkerPool(1, polling);
        runtime = new DeviceRuntime("poll-test", 0, pool);
        runtime.attach(device);
        worker = runtime.workerForQueue(0);
        device.worker = worker;
        queue = driver.deviceQueue(features, calls);
        kickFd = LinuxSys.eventfd(LinuxSys.EFD_NONBLOCK | LinuxSys.EFD_CLOEXEC);
        ring = new Ring(0, queue, worker, runtime, kickFd, null);
        onWorker(() -> {
            try {
                ring.watchKick();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
            ring.handOver();
        });
    }

    @AfterEach
    void stop() throws Exception {
        if (ring != null) {
            onWorker(() -> ring.stop(false));
        }
        if (pool != null) {
            pool.close();
        }
        LinuxSys.closeQuietly(kickFd);
    }

    private void onWorker(Runnable r) throws Exception {
        worker.call(r, 5000);
    }

    private boolean polled() throws Exception {
        AtomicBoolean on = new AtomicBoolean();
        onWorker(() -> on.set(worker.isPolling(ring)));
        return on.get();
    }

    private void ping() {
        driver.addChain(new byte[][] {{1, 2, 3, 4}}, new int[] {16});
    }

    private void kick() throws Exception {
        LinuxSys.eventfdWrite(kickFd, 1);
    }

    private static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting until " + what);
            }
            Thread.sleep(1);
        }
    }

    private void awaitServed(int n) throws InterruptedException {
        await(() -> device.served.get() >= n, n + " chains are served (served " + device.served.get() + ")");
        assertEquals(n, device.served.get());
    }

    private void awaitPollingOver() throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (polled()) {
            assertTrue(System.nanoTime() < deadline, "polling never ended");
            Thread.sleep(1);
        }
    }

    @Test
    void pollingEndsAfterThePollTimeAndReArmsKicks() throws Exception {
        start(20_000, 0);
        ping();
        kick();
        awaitServed(1);
        awaitPollingOver();
        assertEquals(0, driver.usedFlags(), "idle for the polling time: kicks are requested again");
        Thread.sleep(20); // the worker's settle of the ring, once idle, has passed
        ping();
        Thread.sleep(100);
        assertEquals(1, device.served.get(), "no polling after it ended: a buffer waits for its kick");
        kick();
        awaitServed(2);
    }

    @Test
    void whilePolledBuffersAreServedWithoutKicksAndTheDriverIsToldNotToKick() throws Exception {
        start(1_000_000, 0); // one second: polling does not end during the test
        ping();
        kick();
        awaitServed(1);
        assertTrue(polled());
        assertEquals(UsedRingLayout.F_NO_NOTIFY, driver.usedFlags());
        int kicksBefore = device.kicks.get();
        for (int i = 2; i <= 40; i++) {
            // the call that served the last buffer must have returned, or its re-check could take this one too
            await(() -> device.returned.get() == device.kicks.get(), "the device's handleKick returned");
            ping(); // and no kick: only polling can find it
            awaitServed(i);
            assertEquals(UsedRingLayout.F_NO_NOTIFY, driver.usedFlags(), "flags after chain " + i);
        }
        assertTrue(device.kicks.get() >= kicksBefore + 39, "each buffer reached the device as a kick");
    }

    /**
     * A hot upgrade holds polling: a polled ring leaves the set at once although its window is a second
     * long, kicks are asked for again, and no kick starts polling until the hold is released.
     */
    @Test
    void heldPollingEndsAtOnceAndStartsOnlyAfterTheRelease() throws Exception {
        start(1_000_000, 0); // one second: without the hold polling would not end during the test
        ping();
        kick();
        awaitServed(1);
        assertTrue(polled());
        pool.holdPolling(true);
        awaitPollingOver();
        assertEquals(0, driver.usedFlags(), "held: kicks are requested again");
        ping();
        kick();
        awaitServed(2);
        assertFalse(polled(), "a kick that found work starts no polling while it is held");
        pool.holdPolling(false);
        ping();
        kick();
        awaitServed(3);
        assertTrue(polled(), "released: a kick that found work polls again");
    }

    @Test
    void withEventIdxPollingParksAvailEventAndReArmsItWhenPollingEnds() throws Exception {
        start(20_000, VirtioFeatures.RING_EVENT_IDX);
        ping();
        kick();
        awaitServed(1);
        for (int i = 2; i <= 2 + SIZE; i++) {
            int old = driver.availIdx();
            ping();
            assertFalse(needEvent(driver.availEvent(), driver.availIdx(), old), "the driver would kick at " + i);
            awaitServed(i);
        }
        awaitPollingOver();
        assertEquals(queue.nextAvail(), driver.availEvent(), "kick for the next entry again");
    }

    /** vring_need_event (virtio 1.2 section 2.7.10), as a driver evaluates it. */
    private static boolean needEvent(int event, int newIdx, int old) {
        return ((newIdx - event - 1) & 0xffff) < ((newIdx - old) & 0xffff);
    }

    @Test
    void aBufferPublishedJustBeforePollingEndsIsServed() throws Exception {
        start(1_000_000, 0);
        ping();
        kick();
        awaitServed(1);
        assertTrue(polled());
        AtomicBoolean keep = new AtomicBoolean();
        AtomicInteger servedInside = new AtomicInteger();
        AtomicInteger flags = new AtomicInteger();
        // On the worker, so its own poll cannot find the buffer first: the driver publishes while it
        // still sees NO_NOTIFY (so it does not kick), then polling ends.
        onWorker(() -> {
            ping();
            keep.set(ring.endPolling());
            servedInside.set(device.served.get());
            flags.set(driver.usedFlags());
        });
        assertTrue(keep.get(), "the re-check found the buffer, so polling goes on");
        assertEquals(2, servedInside.get(), "the buffer was served by the re-check, not stranded");
        assertEquals(UsedRingLayout.F_NO_NOTIFY, flags.get(), "still polling, so kicks are off again");

        // nothing published: polling really ends and kicks are re-armed
        AtomicInteger flagsAfter = new AtomicInteger(-1);
        onWorker(() -> {
            keep.set(ring.endPolling());
            if (!keep.get()) {
                worker.stopPolling(ring); // what the worker does when endPolling says so
            }
            flagsAfter.set(driver.usedFlags());
        });
        assertFalse(keep.get());
        assertEquals(0, flagsAfter.get());
        assertFalse(polled());
    }

    @Test
    void disablingThePolledRingTakesItOutOfThePolledSetAndReArmsKicks() throws Exception {
        start(1_000_000, 0);
        ping();
        kick();
        awaitServed(1);
        assertTrue(polled());
        onWorker(ring::takeBack); // SET_VRING_ENABLE 0, or the first step of GET_VRING_BASE
        assertFalse(polled());
        assertEquals(0, driver.usedFlags());
        ping();
        Thread.sleep(50);
        assertEquals(1, device.served.get(), "a disabled ring is not served");
    }

    /**
     * A driver whose barriers do nothing (TCG, one vCPU) can publish a buffer and read the old
     * avail_event, so it does not kick, while the worker read the old avail->idx and idles. The worker's
     * settle, 1 ms into its idleness, serves the buffer without a kick.
     */
    @Test
    void aBufferPublishedWithoutAKickAsTheRingIdlesIsServedByTheSettle() throws Exception {
        start(0, 0);
        device.afterServing = this::ping; // after the device re-armed kicks and re-checked: no kick for it
        ping();
        kick();
        awaitServed(2);
    }

    /** The interrupt side: the driver asked for an interrupt about an entry after the queue had skipped it. */
    @Test
    void anInterruptTheDriverAskedForTooLateIsSentByTheSettle() throws Exception {
        start(0, VirtioFeatures.RING_EVENT_IDX);
        driver.setUsedEvent(5); // not yet
        device.afterServing = () -> driver.setUsedEvent(0); // entry 0 is used already: the late request
        ping();
        kick();
        awaitServed(1);
        await(() -> calls.count() == 1, "the settle sends the interrupt the driver asked for too late");
        Thread.sleep(20);
        assertEquals(1, calls.count(), "once");
    }

    @Test
    void zeroPollTimeNeverPolls() throws Exception {
        start(0, 0);
        ping();
        kick();
        awaitServed(1);
        assertFalse(polled());
        assertEquals(0, driver.usedFlags());
        Thread.sleep(20); // the worker's settle of the ring, once idle, has passed
        ping();
        Thread.sleep(50);
        assertEquals(1, device.served.get());
        kick();
        awaitServed(2);
    }

    @Test
    void aDeviceThatTurnedKicksOffIsNotPolled() throws Exception {
        device.noKicks = true;
        start(1_000_000, 0);
        ping();
        kick(); // before the device's NO_NOTIFY is seen, or a driver ignoring it (the flag is advisory)
        awaitServed(1);
        assertFalse(polled());
        assertEquals(UsedRingLayout.F_NO_NOTIFY, driver.usedFlags());
    }

    @Test
    void aRingWithRequestsInFlightOnTheDevicesThreadsIsNotPolledUntilTheyComplete() throws Exception {
        device.defer = Defer.HOLD;
        start(1_000_000, 0);
        ping();
        kick();
        awaitServed(1);
        assertFalse(polled(), "the driver waits for the request: polling would only take the CPU its I/O needs");
        assertEquals(0, driver.usedFlags(), "kicks stay on");
        device.held.take().complete(0);
        await(() -> driver.usedIdx() == 1, "the completion is published");
        assertTrue(polled(), "nothing in flight any more: polled for the driver's next request");
        ping(); // no kick
        awaitServed(2);
    }

    @Test
    void aCompletionThatLeavesRequestsInFlightStartsNoPolling() throws Exception {
        device.defer = Defer.HOLD;
        start(1_000_000, 0);
        ping();
        ping();
        kick();
        awaitServed(2);
        device.held.take().complete(0);
        await(() -> driver.usedIdx() == 1, "the first completion is published");
        assertFalse(polled(), "one request still in flight");
        device.held.take().complete(0);
        await(() -> driver.usedIdx() == 2, "the second completion is published");
        assertTrue(polled());
    }

    @Test
    void requestsCompletedDuringTheKickArePublishedAtOnceAndTheRingIsPolled() throws Exception {
        device.defer = Defer.INLINE;
        start(1_000_000, 0);
        ping();
        kick();
        awaitServed(1);
        AtomicInteger used = new AtomicInteger();
        onWorker(() -> used.set(driver.usedIdx()));
        assertEquals(1, used.get(), "published by the kick");
        assertTrue(polled(), "nothing in flight after the kick: polled as any ring");
    }

    @Test
    void pollingEndsAtOnceWhenThePolledRingsRequestsGoInFlight() throws Exception {
        device.defer = Defer.INLINE;
        start(3_000_000, 0); // a window of 3 s, which must not have to pass
        ping();
        kick();
        awaitServed(1);
        assertTrue(polled());
        device.defer = Defer.HOLD;
        long t0 = System.nanoTime();
        ping(); // found by polling
        awaitServed(2);
        awaitPollingOver();
        assertTrue(System.nanoTime() - t0 < TimeUnit.MILLISECONDS.toNanos(1500), "polling ended before its window");
        assertEquals(0, driver.usedFlags(), "kicks are requested again");
        device.held.take().complete(0);
        await(() -> driver.usedIdx() == 2, "the completion is published");
    }

    private long window() throws Exception {
        AtomicLong nanos = new AtomicLong();
        onWorker(() -> nanos.set(worker.pollWindowNanos()));
        return nanos.get();
    }

    /** One sleep of the worker that ends with a kick counting {@code kicks}, after {@code sleepMs}. */
    private void sleepThenKick(int served, long sleepMs, long kicks) throws Exception {
        awaitPollingOver();
        Thread.sleep(sleepMs);
        ping();
        LinuxSys.eventfdWrite(kickFd, kicks);
        awaitServed(served);
    }

    @Test
    void theWindowGrowsAfterSleepsShorterThanTheMaximumOrWithSeveralKicksAndShrinksAfterLongOnes() throws Exception {
        start(new Polling(50, 200_000), 0); // "short" is under 200 ms: no scheduling hiccup makes it long
        sleepThenKick(1, 300, 1);
        assertEquals(50_000, window(), "a long sleep with one kick: the window stays at its start");
        sleepThenKick(2, 300, 2);
        assertEquals(100_000, window(), "a long sleep, but the driver kicked twice meanwhile: doubled");
        sleepThenKick(3, 0, 1);
        assertEquals(200_000, window(), "a sleep shorter than the maximum: doubled");
        sleepThenKick(4, 300, 1);
        assertEquals(100_000, window(), "a long sleep: halved");
    }

    @Test
    void equalLimitsKeepTheWindowFixed() throws Exception {
        start(new Polling(300, 300), 0);
        sleepThenKick(1, 0, 3);
        assertEquals(300_000, window());
        sleepThenKick(2, 10, 1);
        assertEquals(300_000, window());
    }
}
