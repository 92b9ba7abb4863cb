package org.jvhost.engine.virtq;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A split ring's notification suppression (virtio 1.2 section 2.7.10) for {@link SplitQueue}: what the
 * device writes into the used ring to ask for kicks or not (VRING_USED_F_NO_NOTIFY, or avail_event with
 * EVENT_IDX), and what it reads from the avail ring to decide whether used entries earn an interrupt
 * (VRING_AVAIL_F_NO_INTERRUPT, or used_event). The queue keeps the ring indices and passes in those a
 * decision needs; it also keeps the broken state, and calls nothing here once broken. Worker only (the
 * notifier may be replaced from any thread); never allocates.
 */
final class SplitEventSuppression {

    private static final VarHandle U16 = MethodHandles.byteBufferViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);

    private final int size;
    private final boolean eventIdx;
    private final int usedEventOffset;
    private final int availEventOffset;
    private ByteBuffer avail;
    private ByteBuffer used;
    private volatile CallNotifier notifier;

    /** used->idx at the last notification decision: the "old" of vring_need_event. */
    private int signalledUsed;
    /**
     * Whether this queue has signalled for entries it used. Until then, whether the driver was told about
     * the used entries already in the ring is unknown: a back-end killed (or a connection closed) between
     * publishing used->idx and writing the call eventfd, or after QEMU tore its notifiers down, never
     * told it. So the first signal counts them as unsignalled too (a ring holds at most size of them):
     * it calls if used_event lies among them, else the driver waits for an interrupt that went nowhere.
     */
    private boolean signalledSinceStart;
    /** {@link #signal} skipped an interrupt since the last one it sent ({@link #signalIfMissed}). */
    private boolean skippedSignal;

    /**
     * The worker polls this queue (adaptive busy-polling), so the driver is asked not to kick whatever
     * the device says; see {@link #setHostPolling}.
     */
    private boolean hostPolling;
    /** What the device last asked for: true after enableNotifications (and initially), false after disable. */
    private boolean deviceWantsKicks = true;
    /**
     * How many times kicks were requested again ({@link #requestKicks}): strict mode's kick check tells
     * by it whether the suppression stayed in force between two kicks. Not on a per-chain path.
     */
    private int kickRequests;

    SplitEventSuppression(int size, boolean eventIdx, CallNotifier notifier) {
        this.size = size;
        this.eventIdx = eventIdx;
        this.usedEventOffset = AvailRingLayout.usedEvent(size);
        this.availEventOffset = UsedRingLayout.availEvent(size);
        setNotifier(notifier);
    }

    /** The avail and used rings, in the queue's current memory. */
    void attach(ByteBuffer availRing, ByteBuffer usedRing) {
        avail = availRing;
        used = usedRing;
    }

    void setNotifier(CallNotifier n) {
        notifier = n == null ? CallNotifier.NONE : n;
    }

    /** The queue starts with used->idx at {@code usedIdx}. */
    void restart(int usedIdx) {
        signalledUsed = usedIdx;
    }

    /**
     * The interrupt decision for the used entries up to {@code newUsed}, which the queue has published:
     * signals the driver if it asks for them.
     */
    boolean signal(int newUsed) {
        // Full fence (StoreLoad): the used->idx store must be visible before we read the driver's
        // suppression state. Otherwise the load may be satisfied first: the driver re-enables interrupts,
        // re-checks used->idx, still sees the old value and sleeps, while we read the stale "suppressed"
        // and skip the call. That is a lost interrupt and the guest stalls.
        VarHandle.fullFence();
        int old = signalledUsed;
        signalledUsed = newUsed;
        if (newUsed == old) {
            return false;
        }
        if (!signalledSinceStart) {
            signalledSinceStart = true;
            old = (old - size) & 0xffff; // see signalledSinceStart
        }
        return signalIf(driverWants(newUsed, old));
    }

    /** Signals the driver if an earlier {@link #signal} skipped an interrupt it may still be waiting for. */
    boolean signalIfMissed() {
        if (!skippedSignal) {
            return false;
        }
        // the entries a waiting driver can still be missing: the last ring-size ones published
        return signalIf(driverWants(signalledUsed, (signalledUsed - size) & 0xffff));
    }

    /**
     * Whether the driver asks for an interrupt about the used entries {@code [old, newIdx)}: with EVENT_IDX
     * if used_event lies among them, else if its flags allow interrupts.
     */
    private boolean driverWants(int newIdx, int old) {
        return eventIdx
                ? needEvent(Short.toUnsignedInt((short) U16.getVolatile(avail, usedEventOffset)), newIdx, old)
                : (Short.toUnsignedInt((short) U16.getVolatile(avail, AvailRingLayout.FLAGS))
                        & AvailRingLayout.F_NO_INTERRUPT) == 0;
    }

    /** Signals the driver if {@code wanted}; otherwise the skip stays on record ({@link #signalIfMissed}). */
    private boolean signalIf(boolean wanted) {
        if (wanted) {
            notifier.signal();
        }
        skippedSignal = !wanted;
        return wanted;
    }

    /**
     * vring_need_event (virtio 1.2 section 2.7.10): notify if used_event lies in {@code [old, newIdx)},
     * i.e. the driver asked to be woken when the used index passes it and this batch passed it.
     */
    static boolean needEvent(int event, int newIdx, int old) {
        return ((newIdx - event - 1) & 0xffff) < ((newIdx - old) & 0xffff);
    }

    /**
     * The device does not want kicks (it will look at the ring by itself). Here and below, {@code log} is
     * the queue's dirty log (null if none), where a write to the used ring is marked.
     */
    void disableKicks(RingLog log) {
        deviceWantsKicks = false;
        // With EVENT_IDX there is nothing to write: the driver kicks only when avail->idx passes
        // avail_event, which stays where enableKicks left it, so at most one kick arrives.
        // While the host polls, the flags already suppress kicks.
        if (eventIdx || hostPolling) {
            return;
        }
        writeUsed(UsedRingLayout.FLAGS, UsedRingLayout.F_NO_NOTIFY, log);
    }

    /**
     * The device wants a kick for the entry after the ones it has seen, {@code nextAvail}; the caller
     * re-reads avail->idx afterwards ({@link #requestKicks}). While the host polls, nothing is written:
     * the worker re-enables kicks (with the fence and re-check) before it sleeps, so the driver stays
     * quiet and the device only learns whether to go round again.
     */
    void enableKicks(int nextAvail, RingLog log) {
        deviceWantsKicks = true;
        if (!hostPolling) {
            requestKicks(nextAvail, log);
        }
    }

    /**
     * Asks the driver to kick for the next buffer, then fences. The caller re-reads avail->idx after
     * this: the full fence (StoreLoad) makes our request visible before that load. Otherwise the driver
     * may add a buffer and read the old flags/avail_event (so it does not kick) while our load sees the
     * old avail->idx (so we go to sleep): a lost kick and a stalled queue.
     */
    private void requestKicks(int nextAvail, RingLog log) {
        kickRequests++;
        if (eventIdx) {
            // Kick us as soon as the driver makes available the entry after the ones we have seen.
            writeUsed(availEventOffset, nextAvail, log);
        } else {
            writeUsed(UsedRingLayout.FLAGS, 0, log);
        }
        VarHandle.fullFence();
    }

    /** The host polls the ring ({@code on}), so no kick is needed whatever the device wants. */
    void setHostPolling(boolean on) {
        hostPolling = on;
    }

    /**
     * Writes what {@link #setHostPolling} implies. While on, the driver is asked not to kick at all:
     * VRING_USED_F_NO_NOTIFY is set, or with EVENT_IDX avail_event is put one behind {@code nextAvail},
     * the next entry to pop, which the driver's vring_need_event only passes after 65535 more buffers
     * (applying it again is a refresh after such a wrap). Off, what the device asked for last is
     * restored: if that was kicks, they are requested again and fenced ({@link #requestKicks}).
     */
    void applyHostPolling(int nextAvail, RingLog log) {
        if (hostPolling) {
            if (eventIdx) {
                writeUsed(availEventOffset, nextAvail - 1, log);
            } else {
                writeUsed(UsedRingLayout.FLAGS, UsedRingLayout.F_NO_NOTIFY, log);
            }
        } else if (deviceWantsKicks) {
            requestKicks(nextAvail, log);
        }
    }

    /** A 16-bit store into the used ring's header or trailer, noted for the dirty log. */
    private void writeUsed(int offset, int value, RingLog log) {
        U16.set(used, offset, (short) value);
        if (log != null) {
            log.usedWritten(offset, 2);
        }
    }

    boolean hostPolling() {
        return hostPolling;
    }

    boolean deviceWantsKicks() {
        return deviceWantsKicks;
    }

    /**
     * Whether the driver is asked not to kick at all now: the host polls, or the device turned kicks off
     * without EVENT_IDX (VRING_USED_F_NO_NOTIFY is set). With EVENT_IDX a device's disable leaves one
     * more kick legal (avail_event stays where it was), so that is not counted as suppressed.
     */
    boolean kicksSuppressed() {
        return hostPolling || !eventIdx && !deviceWantsKicks;
    }

    int kickRequests() {
        return kickRequests;
    }

    boolean eventIdx() {
        return eventIdx;
    }
}
