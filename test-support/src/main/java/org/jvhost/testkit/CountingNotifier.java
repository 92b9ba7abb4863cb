package org.jvhost.testkit;

import java.util.concurrent.atomic.AtomicInteger;
import org.jvhost.engine.virtq.CallNotifier;

/** A {@link CallNotifier} that counts signals instead of writing an eventfd. Thread-safe. */
public final class CountingNotifier implements CallNotifier {
    private final AtomicInteger count = new AtomicInteger();

    @Override
    public void signal() {
        count.incrementAndGet();
    }

    /** Signals so far. */
    public int count() {
        return count.get();
    }

    /** Returns the count and sets it back to zero. */
    public int reset() {
        return count.getAndSet(0);
    }
}
