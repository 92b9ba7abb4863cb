package org.jvhost.engine.virtq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.jvhost.spi.Completion;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.testkit.CountingNotifier;
import org.jvhost.testkit.MockSplitQueue;
import org.jvhost.testkit.MockSplitQueue.UsedElement;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Chains a device completes later, from other threads ({@link SplitQueue#defer}). */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class DeferredCompletionTest {
    private final MockSplitQueue driver = MockSplitQueue.create(8);
    private final CountingNotifier calls = new CountingNotifier();

    @Test
    void completionsFromAnotherThreadPublishOnDrainInArrivalOrder() throws Exception {
        SplitQueue q = driver.deviceQueue(0, calls);
        AtomicInteger wakes = new AtomicInteger();
        q.setCompletionWake(wakes::incrementAndGet);
        int a = driver.addChain(new byte[][] {{1}}, new int[] {4});
        int b = driver.addChain(new byte[][] {{2}}, new int[] {4});
        DescriptorChain c = q.newChain();
        assertTrue(q.pop(c));
        Completion first = q.defer(c);
        c.write(0, "AAAA".getBytes(StandardCharsets.US_ASCII), 0, 4); // the device writes before completing
        assertTrue(q.pop(c), "the chain object is free for the next pop");
        Completion second = q.defer(c);
        assertEquals(2, q.deferredCount());
        Thread t = new Thread(() -> {
            second.complete(2);
            first.complete(4);
        });
        t.start();
        t.join();
        assertEquals(1, wakes.get(), "one wake per batch: the second completion found the stack non-empty");
        assertEquals(0, driver.usedIdx(), "nothing is published before the worker drains");
        assertEquals(2, q.drainCompletions());
        assertEquals(0, q.deferredCount());
        assertEquals(2, driver.usedIdx());
        assertEquals(new UsedElement(b, 2), driver.pollUsed(), "arrival order, not pop order");
        UsedElement e = driver.pollUsed();
        assertEquals(new UsedElement(a, 4), e);
        assertArrayEquals("AAAA".getBytes(StandardCharsets.US_ASCII), driver.writtenBytes(e));
        assertEquals(1, calls.count(), "one signal for the batch");
    }

    @Test
    void aHandleRefusesASecondCompletionAndALengthBeyondTheChain() {
        SplitQueue q = driver.deviceQueue(0, calls);
        driver.addChain(new byte[][] {{1}}, new int[] {4});
        DescriptorChain c = q.newChain();
        assertTrue(q.pop(c));
        Completion h = q.defer(c);
        assertThrows(IllegalArgumentException.class, () -> h.complete(5));
        assertThrows(IllegalArgumentException.class, () -> h.complete(-1));
        h.complete(1);
        assertThrows(IllegalStateException.class, () -> h.complete(1));
        assertEquals(1, q.drainCompletions());
    }

    @Test
    void aHeadIsDeferredOnceUntilItWasPublished() {
        SplitQueue q = driver.deviceQueue(0, calls);
        driver.addChain(new byte[][] {{1}}, new int[] {4});
        DescriptorChain c = q.newChain();
        assertTrue(q.pop(c));
        Completion h = q.defer(c);
        assertThrows(IllegalStateException.class, () -> q.defer(c), "a device deferring one chain twice");
        h.complete(0);
        q.drainCompletions();
    }

    @Test
    void afterCloseALateCompletionWritesNothing() {
        SplitQueue q = driver.deviceQueue(0, calls);
        driver.addChain(new byte[][] {{1}}, new int[] {4});
        driver.addChain(new byte[][] {{2}}, new int[] {4});
        DescriptorChain c = q.newChain();
        assertTrue(q.pop(c));
        Completion done = q.defer(c);
        assertTrue(q.pop(c));
        Completion late = q.defer(c);
        done.complete(1);
        assertEquals(2, q.closeDeferred(), "one completed but not drained, one pending: both dropped");
        late.complete(1);
        assertEquals(0, q.drainCompletions());
        assertEquals(0, driver.usedIdx(), "the used ring is untouched after the ring stopped");
        assertNull(driver.pollUsed());
        assertEquals(2, q.nextAvail(), "the stopped ring's base counts the dropped chains as consumed");
        assertThrows(IllegalStateException.class, () -> q.defer(c));
    }

    @Test
    void manyThreadsCompleteEveryChainExactlyOnce() throws Exception {
        MockSplitQueue big = MockSplitQueue.create(256);
        SplitQueue q = big.deviceQueue(0, calls);
        CountDownLatch woken = new CountDownLatch(1);
        q.setCompletionWake(woken::countDown);
        List<Completion> handles = new ArrayList<>();
        DescriptorChain c = q.newChain();
        for (int i = 0; i < 120; i++) {
            big.addChain(new byte[][] {{(byte) i}}, new int[] {1});
            assertTrue(q.pop(c));
            handles.add(q.defer(c));
        }
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            int from = t * 30;
            Thread th = new Thread(() -> handles.subList(from, from + 30).forEach(h -> h.complete(1)));
            threads.add(th);
            th.start();
        }
        for (Thread th : threads) {
            th.join();
        }
        assertTrue(woken.await(1, TimeUnit.SECONDS));
        assertEquals(120, q.drainCompletions());
        assertEquals(120, big.usedIdx());
        boolean[] seen = new boolean[256];
        for (int i = 0; i < 120; i++) {
            UsedElement e = big.pollUsed();
            assertTrue(!seen[e.id()], "head " + e.id() + " published twice");
            seen[e.id()] = true;
        }
    }
}
