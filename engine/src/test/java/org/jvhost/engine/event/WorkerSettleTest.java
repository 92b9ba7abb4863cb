package org.jvhost.engine.event;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** A queue marked unsettled is settled once, after the worker has been idle for Worker.SETTLE_MS. */
@Timeout(value = 10, unit = TimeUnit.SECONDS)
class WorkerSettleTest {

    @Test
    void anUnsettledQueueIsSettledOnceAfterTheWorkerIdled() throws Exception {
        try (Worker worker = new Worker(0, Polling.DEFAULT)) {
            AtomicInteger settled = new AtomicInteger();
            AtomicLong markedAt = new AtomicLong();
            AtomicLong settledAt = new AtomicLong();
            CountDownLatch once = new CountDownLatch(1);
            SettlingQueue q = () -> {
                settledAt.set(System.nanoTime());
                settled.incrementAndGet();
                once.countDown();
            };
            worker.post(() -> {
                markedAt.set(System.nanoTime());
                worker.markUnsettled(q);
            });
            assertTrue(once.await(2, TimeUnit.SECONDS), "settled without any event to wake the worker");
            assertTrue(settledAt.get() - markedAt.get() >= Worker.SETTLE_MS * 1_000_000L,
                    "settled only after the worker idled for SETTLE_MS");
            Thread.sleep(50);
            assertEquals(1, settled.get(), "once: it left the list");
        }
    }

    @Test
    void aQueueTakenOffTheListIsNotSettled() throws Exception {
        try (Worker worker = new Worker(0, Polling.DEFAULT)) {
            AtomicInteger settled = new AtomicInteger();
            SettlingQueue q = settled::incrementAndGet;
            CountDownLatch done = new CountDownLatch(1);
            worker.post(() -> {
                worker.markUnsettled(q);
                worker.removeUnsettled(q);
                done.countDown();
            });
            assertTrue(done.await(2, TimeUnit.SECONDS));
            Thread.sleep(50);
            assertEquals(0, settled.get());
        }
    }
}
