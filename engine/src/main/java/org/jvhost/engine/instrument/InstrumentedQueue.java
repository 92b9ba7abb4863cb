package org.jvhost.engine.instrument;

import org.jvhost.engine.virtq.HostQueue;
import org.jvhost.spi.Completion;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.GuestMemory;
import org.jvhost.spi.Virtqueue;

/**
 * The queue a device is handed while strict mode or a data-path fault is on for its connection
 * ({@link SessionTap#queueView}): every call goes to the ring's queue, and around it the driver is
 * checked ({@link RingChecks}; a packed ring for the rules that apply to it) and the planned faults are injected
 * ({@link DataPathFaults}, either layout). Without either the device gets the queue itself, so an
 * uninstrumented data path costs nothing. Worker only, like the queue.
 */
public final class InstrumentedQueue implements Virtqueue {
    private final HostQueue queue;
    private final int index;
    private final boolean transmit;
    /** Null while strict mode is off. */
    private final RingChecks checks;
    /** Null without data-path faults. */
    private final DataPathFaults faults;
    /** Posts a kick of this ring to its worker; called when a stall ends. */
    private final Runnable rekick;

    InstrumentedQueue(HostQueue queue, boolean transmit, RingChecks checks, DataPathFaults faults, Runnable rekick) {
        this.queue = queue;
        this.index = queue.index();
        this.transmit = transmit;
        this.checks = checks;
        this.faults = faults;
        this.rekick = rekick;
    }

    /**
     * The ring's kick eventfd was read ({@code kicks}: its count); the ring calls this before it hands
     * the kick on.
     */
    public void kicked(long kicks) {
        if (checks != null) {
            checks.kicked(kicks);
        }
    }

    @Override public int index() { return index; }
    @Override public int size() { return queue.size(); }
    @Override public GuestMemory memory() { return queue.memory(); }
    @Override public boolean isEnabled() { return queue.isEnabled(); }
    @Override public DescriptorChain newChain() { return queue.newChain(); }
    @Override public void publishUsed() { queue.publishUsed(); }
    @Override public boolean signalUsed() { return queue.signalUsed(); }
    @Override public void disableNotifications() { queue.disableNotifications(); }
    @Override public boolean isBroken() { return queue.isBroken(); }
    @Override public String brokenReason() { return queue.brokenReason(); }
    @Override public int nextAvail() { return queue.nextAvail(); }
    @Override public int nextUsed() { return queue.nextUsed(); }

    @Override
    public boolean pop(DescriptorChain chain) {
        if (faults != null && faults.stalled(index)) {
            return false;
        }
        if (checks != null) {
            checks.checkAvailIdx();
        }
        if (!queue.pop(chain)) {
            return false;
        }
        if (checks != null) {
            checks.popped(chain);
        }
        return true;
    }

    @Override
    public void unpop(int count) {
        queue.unpop(count);
        if (checks != null) {
            checks.unpopped(count);
        }
    }

    @Override
    public void addUsed(DescriptorChain chain, int writtenBytes) {
        queue.addUsed(chain, writtenBytes);
        if (checks != null) {
            checks.used(chain);
        }
        if (faults != null) {
            faults.completed(index, transmit, rekick);
        }
    }

    /**
     * The chain leaves the worker's hands here, so the checks count its head as returned now: a driver
     * that reuses the head of a deferred chain before it completes is not reported (the checks are
     * worker only, and the completion may come from any thread).
     */
    @Override
    public Completion defer(DescriptorChain chain) {
        Completion handle = queue.defer(chain);
        if (checks != null) {
            checks.used(chain);
        }
        if (faults != null) {
            faults.completed(index, transmit, rekick);
        }
        return handle;
    }

    @Override public int deferredCount() { return queue.deferredCount(); }

    @Override
    public boolean enableNotifications() {
        boolean more = queue.enableNotifications(); // kicks are requested even while stalled
        return more && (faults == null || !faults.stalled(index));
    }

    @Override
    public int availableCount() {
        return faults != null && faults.stalled(index) ? 0 : queue.availableCount();
    }

    @Override
    public String toString() {
        return "Instrumented" + queue;
    }
}
