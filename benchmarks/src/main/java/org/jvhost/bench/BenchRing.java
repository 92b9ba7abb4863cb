package org.jvhost.bench;

import org.jvhost.engine.virtq.CallNotifier;
import org.jvhost.engine.virtq.HostQueue;

/**
 * An allocation-free guest driver of one ring for benchmarks: every buffer id owns one fixed buffer, so
 * a buffer is one descriptor. {@link RingDriver} drives a split ring, {@link PackedRingDriver} a packed one.
 */
interface BenchRing {

    /** Guest address of buffer {@code i}. */
    long bufferGpa(int i);

    /** Guest address the ring's used entries are logged at (what QEMU passes as log_guest_addr). */
    long usedGpa();

    /** The engine's device-side queue over this ring. */
    HostQueue deviceQueue(int index, long features, CallNotifier notifier);

    /** Makes {@code n} buffers available, published at once. */
    void post(int n);

    /**
     * Takes back every used buffer the device published, checking each reports {@code expectedLen}
     * bytes written, and asks for a notification on the next one.
     *
     * @return buffers reclaimed
     */
    int reclaim(int expectedLen);
}
