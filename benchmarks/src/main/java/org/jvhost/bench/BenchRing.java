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
     * Makes {@code n} buffers at the guest addresses {@code gpas[0..n)}, {@code len} bytes each,
     * available (the descriptors rewritten), published at once: a driver posting buffers from a pool.
     */
    void post(int n, long[] gpas, int len);

    /** As {@link #reclaim(int)}, and the reclaimed buffers' guest addresses into {@code gpas}, oldest first. */
    int reclaim(int expectedLen, long[] gpas);

    /**
     * Takes back every used buffer the device published, checking each reports {@code expectedLen}
     * bytes written, and asks for a notification on the next one.
     *
     * @return buffers reclaimed
     */
    int reclaim(int expectedLen);

    /** Buffer ids the driver holds (free to post). */
    int freeCount();

    /**
     * From now on the driver polls its used ring and asks for no notifications, as a poll-mode driver
     * (DPDK's virtio PMD) does: the driver event suppression (packed) or used_event (split) is left alone
     * by {@link #reclaim}, so the device's signal check reads a line nobody writes.
     */
    void pollMode();
}
