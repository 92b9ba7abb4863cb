package org.jvhost.engine.virtq;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A packed ring's event suppression (virtio 1.2 section 2.8.10) for {@link PackedQueue}: the device
 * area, where the device asks the driver to kick or not to, and the driver area, which decides whether
 * the used descriptors written since the last decision earn an interrupt. The queue keeps the ring
 * positions and passes in those a decision needs; it also keeps the broken state, and calls nothing
 * here once broken. Worker only (the notifier may be replaced from any thread); never allocates.
 */
final class PackedEventSuppression {

    private static final VarHandle U32 = MethodHandles.byteBufferViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);

    private final int size;
    private final boolean eventIdx;
    private final long deviceGpa;

    /** Driver event suppression: the driver's wishes about our notifications. */
    private ByteBuffer driverEvent;
    /** Device event suppression: our wishes about the driver's kicks. */
    private ByteBuffer deviceEvent;
    private volatile CallNotifier notifier;

    private boolean hostPolling;
    private boolean deviceWantsKicks = true;
    /**
     * The device event suppression word last written, -1 if unknown (new rings): a write of the same
     * word is skipped, so a device that disables kicks for every batch does not store into a cache line
     * the driver reads before each kick. Only the device writes that area (section 2.8.10).
     */
    private int deviceEventWord = -1;
    /** Kick requests since the queue was made ({@link #kickRequests}); not on a per-chain path. */
    private int kickRequests;
    /** Used position and wrap counter at the last notification decision: the "old" of the event check. */
    private int signalledPos;
    private boolean signalledWrap;
    /** {@link #signal} skipped an interrupt since the last one it sent ({@link #signalIfMissed}). */
    private boolean skippedSignal;

    PackedEventSuppression(int size, boolean eventIdx, long deviceGpa, CallNotifier notifier) {
        this.size = size;
        this.eventIdx = eventIdx;
        this.deviceGpa = deviceGpa;
        setNotifier(notifier);
    }

    /** The two areas, in the queue's current memory; the device area's content is unknown again. */
    void attach(ByteBuffer driverArea, ByteBuffer deviceArea) {
        driverEvent = driverArea;
        deviceEvent = deviceArea;
        deviceEventWord = -1;
    }

    void setNotifier(CallNotifier n) {
        notifier = n == null ? CallNotifier.NONE : n;
    }

    /** The ring (re)starts with used descriptors written up to {@code (usedPos, usedWrap)}. */
    void restart(int usedPos, boolean usedWrap) {
        signalledPos = usedPos;
        signalledWrap = usedWrap;
    }

    /**
     * The interrupt decision for the used descriptors written up to {@code (usedPos, usedWrap)}, which the
     * queue has published: signals the driver if it asks for them.
     */
    boolean signal(int usedPos, boolean usedWrap) {
        // Full fence (StoreLoad): the used flags must be visible before we read the driver's event
        // suppression. Otherwise the driver may enable notifications, re-check our ring, see nothing
        // used and sleep, while we read its stale DISABLE and skip the call: a lost interrupt.
        VarHandle.fullFence();
        int oldPos = signalledPos;
        boolean oldWrap = signalledWrap;
        signalledPos = usedPos;
        signalledWrap = usedWrap;
        if (oldPos == usedPos && oldWrap == usedWrap) {
            return false;
        }
        return signalIf(driverWants(oldPos, oldWrap, usedPos, usedWrap));
    }

    /** Signals the driver if an earlier {@link #signal} skipped an interrupt it may still be waiting for. */
    boolean signalIfMissed(int usedPos, boolean usedWrap) {
        if (!skippedSignal) {
            return false;
        }
        // the entries a waiting driver can still be missing: the last ring-size ones, from this
        // position one lap back
        return signalIf(driverWants(usedPos, !usedWrap, usedPos, usedWrap));
    }

    /**
     * Whether the driver asks for an interrupt about the used descriptors written from
     * {@code (oldPos, oldWrap)} up to {@code (usedPos, usedWrap)}: with DESC and EVENT_IDX if they include
     * off_wrap's position, else unless its flags say DISABLE.
     */
    private boolean driverWants(int oldPos, boolean oldWrap, int usedPos, boolean usedWrap) {
        int word = (int) U32.getVolatile(driverEvent, 0);
        int flags = (word >>> 16) & 0x3;
        return flags == EventSuppressLayout.DESC && eventIdx
                ? passed(word & 0xffff, oldPos, oldWrap, usedPos, usedWrap)
                : flags != EventSuppressLayout.DISABLE;
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
     * Whether the used descriptors written from {@code (oldPos, oldWrap)} up to {@code (usedPos,
     * usedWrap)} include the position the driver named in off_wrap (section 2.8.10: notify when the
     * device has written that entry). The positions are put on one line: those of the current used lap
     * as they are, those of the lap before one ring size lower.
     */
    private boolean passed(int offWrap, int oldPos, boolean oldWrap, int usedPos, boolean usedWrap) {
        int event = linear(offWrap & 0x7fff, (offWrap & EventSuppressLayout.WRAP) != 0, usedWrap);
        return linear(oldPos, oldWrap, usedWrap) <= event && event < usedPos;
    }

    private int linear(int pos, boolean wrap, boolean usedWrap) {
        return wrap == usedWrap ? pos : pos - size;
    }

    /**
     * The device does not want kicks (it will look at the ring by itself). Here and below, {@code log} is
     * the queue's dirty log (null if none), where a write to the device area is marked.
     */
    void disableKicks(RingLog log) {
        deviceWantsKicks = false;
        if (!hostPolling) {
            writeDeviceEvent(0, EventSuppressLayout.DISABLE, log);
        }
    }

    /**
     * The device wants a kick for the next buffer, the one at {@code (availPos, availWrap)}; the caller
     * re-reads the ring afterwards ({@link #requestKicks}).
     */
    void enableKicks(int availPos, boolean availWrap, RingLog log) {
        deviceWantsKicks = true;
        if (!hostPolling) {
            requestKicks(availPos, availWrap, log);
        }
    }

    /** The host polls the ring ({@code on}), so no kick is needed whatever the device wants. */
    void setHostPolling(boolean on) {
        hostPolling = on;
    }

    /**
     * Writes what {@link #setHostPolling} implies to the device area: DISABLE while the host polls, else
     * a kick request if the device wants kicks (for the buffer at {@code (availPos, availWrap)}).
     */
    void applyHostPolling(int availPos, boolean availWrap, RingLog log) {
        if (hostPolling) {
            writeDeviceEvent(0, EventSuppressLayout.DISABLE, log);
        } else if (deviceWantsKicks) {
            requestKicks(availPos, availWrap, log);
        }
    }

    /**
     * Asks the driver to kick for the next buffer (with EVENT_IDX: for the one at the avail position),
     * then fences. The caller re-reads the ring after this: the full fence (StoreLoad) makes our request
     * visible before that load, or the driver could add a buffer and read our old DISABLE while we read
     * the old flags: a lost kick and a stalled queue.
     */
    private void requestKicks(int availPos, boolean availWrap, RingLog log) {
        kickRequests++;
        if (eventIdx) {
            writeDeviceEvent(availPos | (availWrap ? EventSuppressLayout.WRAP : 0), EventSuppressLayout.DESC, log);
        } else {
            writeDeviceEvent(0, EventSuppressLayout.ENABLE, log);
        }
        VarHandle.fullFence();
    }

    private void writeDeviceEvent(int offWrap, int flags, RingLog log) {
        int word = EventSuppressLayout.word(offWrap, flags);
        if (word == deviceEventWord) {
            return;
        }
        U32.set(deviceEvent, 0, word);
        deviceEventWord = word;
        if (log != null && log.ringLogged()) {
            log.written(deviceGpa, EventSuppressLayout.SIZE);
        }
    }

    boolean hostPolling() {
        return hostPolling;
    }

    boolean deviceWantsKicks() {
        return deviceWantsKicks;
    }

    /** The host polls, or the device turned kicks off: the device area says DISABLE. */
    boolean kicksSuppressed() {
        return hostPolling || !deviceWantsKicks;
    }

    int kickRequests() {
        return kickRequests;
    }
}
