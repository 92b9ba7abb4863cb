package org.jvhost.engine.event;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A command the worker posts to itself writes no wake-up (LoopMailbox#post); the worker must still run it
 * before it sleeps in epoll_wait, where nothing else would wake it here.
 */
@Timeout(value = 10, unit = TimeUnit.SECONDS)
class WorkerSelfPostTest {

    @Test
    void aCommandTheWorkerPostsToItselfRunsWithoutAnotherWakeUp() throws Exception {
        try (Worker worker = new Worker(0, Polling.DEFAULT)) {
            for (int round = 0; round < 3; round++) {
                CountDownLatch ran = new CountDownLatch(1);
                worker.post(() -> worker.post(() -> worker.post(ran::countDown)));
                assertTrue(ran.await(2, TimeUnit.SECONDS), "round " + round + ": the self-posted command ran");
            }
        }
    }
}
