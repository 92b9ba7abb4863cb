package org.jvhost.engine.session;

import org.jvhost.engine.event.Deadlines;
import org.jvhost.engine.device.DeviceRuntime;
import org.jvhost.engine.event.EventHandler;
import org.jvhost.engine.event.PolledQueue;
import org.jvhost.engine.event.ReadyQueue;
import org.jvhost.engine.event.SettlingQueue;
import org.jvhost.engine.event.Worker;
import org.jvhost.engine.instrument.InstrumentedQueue;
import org.jvhost.engine.instrument.SessionTap;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.jvhost.engine.virtq.HostQueue;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.Virtqueue;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A started ring: its live queue and its kick watch. Everything but construction runs on the ring's
 * worker, which is what lets the device use the queue without locks.
 *
 * <p>Polling: a kick that made the device pop buffers puts the ring into host polling
 * ({@link HostQueue#setHostPolling}: the driver stops kicking) and into its worker's polled set. The
 * worker then delivers a kick to the device whenever avail->idx moved since the last one it delivered,
 * exactly when a driver would have kicked, until the ring is idle for the polling time. A ring that
 * is disabled or stopped leaves the polled set first.
 *
 * <p>Re-delivery: after every callback that took buffers, a ring the device left with buffers still
 * available, or with notifications off (so the driver will not kick for what comes next), goes on its
 * worker's ready list ({@link Worker#markReady}) and gets another kick without one from the driver.
 * That lets a device stop after a budget of chains and return the thread to the other queues, fd
 * watches and commands of its worker (see the {@link org.jvhost.spi.Virtqueue} contract). A callback
 * that took nothing ends re-delivery: a device that leaves buffers on purpose (an RX queue waiting for
 * frames) is not spun. A ring that is disabled or stopped leaves the ready list first.
 *
 * <p>Discarding: vhost-user "Ring states" has a started but disabled ring processed "without causing any
 * side effects. For example, for a networking device, in the disabled state the back-end must not supply
 * any new RX packets, but must process and discard any TX packets." So on a queue the device calls a
 * {@linkplain org.jvhost.spi.VhostUserDevice#isTransmitQueue transmit queue}, the ring itself returns every
 * chain with nothing written while it is disabled: what was pending when it was disabled, and what each
 * kick brings after, {@link #DISCARD_BUDGET} chains per turn of the worker (the ready list brings it back
 * for the rest). Any other disabled ring keeps its buffers for the device (rust-vmm and DPDK's vhost
 * library do not process a disabled ring at all).
 *
 * <p>A kick is not discarded at once, though: its chains wait {@link #DISCARD_GRACE_MS} for an enable.
 * The front-end's SET_VRING_ENABLE and its kick travel apart (the socket to the control loop, the
 * eventfd to the worker), so a kick written after the enable can be seen first. DPDK's virtio_user
 * enables a second queue pair without asking for a reply and starts sending at once: discarding at
 * once dropped the frames it meant to circulate. What was pending when the ring is disabled is
 * discarded at once: the disable came after it.
 */
final class Ring implements EventHandler, PolledQueue, ReadyQueue, SettlingQueue {
    private static final Logger LOG = LoggerFactory.getLogger(Ring.class);
    /** Most chains discarded per turn of the worker, as a device's drain is budgeted (loopback: 256). */
    static final int DISCARD_BUDGET = 256;
    /** How long a kick on a started but disabled transmit ring waits for an enable before its chains go. */
    static final long DISCARD_GRACE_MS = 250;
    /**
     * How long a stop or a memory update waits for the device's deferred chains
     * ({@link org.jvhost.spi.Completion}) before it goes on without them.
     */
    static final long QUIET_TIMEOUT_MS = 5000;

    final int index;
    final HostQueue queue;
    final Worker worker;
    private final DeviceRuntime runtime;
    /** Gives the queue as the device sees it: itself, or instrumented (strict mode, data-path faults). */
    private final SessionTap tap;
    /** The instrumented queue the device holds, or null; made at each hand-over. Worker only. */
    private InstrumentedQueue instrumented;
    /** The device's {@link DeviceRuntime#isTransmitQueue} answer: discard while disabled. */
    private final boolean transmit;
    /** The chain discards pop into, made on the first discard. Worker only. */
    private DescriptorChain discardChain;
    /** A kick's discard waits out {@link #DISCARD_GRACE_MS}; later kicks join it. Worker only. */
    private boolean discardPending;
    /** Stopped for good (GET_VRING_BASE, a reset, the end of the session): a late discard writes nothing. */
    private boolean stopped;
    private int kickFd;
    private long kickToken = -1;
    /** The device holds the queue (started and enabled). Worker only. */
    private boolean handed;
    /** The worker polls this ring. Worker only. */
    private boolean polling;
    /** On the worker's ready list. Worker only. */
    private boolean ready;
    /** On the worker's settle list ({@link #settle}). Worker only. */
    private boolean unsettled;
    /**
     * The avail index up to which the device has been told about buffers: avail->idx as read before the
     * last kick, or what the device consumed if that is further (it drained buffers published during
     * the callback, which therefore need no kick of their own). Worker only.
     */
    private int kickedAvail;
    /** What runs once the device's deferred chains are all published ({@link #whenQuiet}); worker only. */
    private Runnable quietWaiter;
    /** Tells a timed-out wait from a later one; worker only. */
    private int quietGeneration;
    /** Publishes deferred completions, posted by the first completion of a batch (any thread). */
    private final Runnable drainCommand = this::drainPosted;

    Ring(int index, HostQueue queue, Worker worker, DeviceRuntime runtime, int kickFd, SessionTap tap) {
        this.index = index;
        this.tap = tap;
        this.queue = queue;
        this.worker = worker;
        this.runtime = runtime;
        this.kickFd = kickFd;
        this.transmit = runtime.isTransmitQueue(index);
        queue.setCompletionWake(() -> worker.post(drainCommand));
    }

    /**
     * Publishes the chains the device completed from other threads (addUsed, one signalUsed), between
     * device callbacks; ends a {@link #whenQuiet} wait when the last one is in. Worker only.
     *
     * @return how many were published
     */
    private int drainCompletions() {
        int published = 0;
        try {
            published = queue.drainCompletions();
            runtime.raisePendingFault(); // the used ring is guest memory
        } catch (Throwable t) {
            runtime.fail("deferred completion", index, t);
        }
        if (published > 0) {
            markUnsettled();
        }
        if (quietWaiter != null && queue.deferredCount() == 0) {
            endQuietWait();
        }
        return published;
    }

    /**
     * The posted drain: once it published the last request in flight, the ring is polled as after a kick
     * that found work (if polling is on): the driver, just answered, is about to publish its next request,
     * and a polling worker takes it without the kick and the wake-up from an idle CPU. While requests are
     * in flight it is not ({@link #awaitingCompletions}).
     */
    private void drainPosted() {
        if (drainCompletions() > 0 && handed && !polling && worker.pollingEnabled() && queue.deviceWantsKicks()
                && !awaitingCompletions() && !runtime.isFailed() && !queue.isBroken()) {
            polling = true;
            queue.setHostPolling(true);
            worker.startPolling(this);
        }
    }

    /**
     * Runs {@code then} once the device has no deferred chain outstanding: now if it has none, else when
     * the last completes, or after {@link #QUIET_TIMEOUT_MS} (logged, with how many are missing). The
     * worker is not blocked meanwhile. One wait at a time (a request's plan runs its steps in turn).
     * Worker only.
     */
    void whenQuiet(String why, Runnable then) {
        if (queue.deferredCount() == 0) {
            then.run();
            return;
        }
        quietWaiter = then;
        int generation = ++quietGeneration;
        Deadlines.after(QUIET_TIMEOUT_MS, worker::post, () -> {
            if (quietWaiter != null && quietGeneration == generation) {
                LOG.warn("{} queue {}: {}: {} deferred request(s) still outstanding after {} ms; going on without "
                        + "them (the guest memory they point into stays mapped until the device completes them)",
                        runtime.name(), index, why, queue.deferredCount(), QUIET_TIMEOUT_MS);
                endQuietWait();
            }
        });
    }

    private void endQuietWait() {
        Runnable then = quietWaiter;
        quietWaiter = null;
        then.run();
    }

    /** Starts watching the kick eventfd. Worker only. */
    void watchKick() throws NativeException {
        kickToken = worker.watch(kickFd, LinuxSys.EPOLLIN, this);
    }

    /**
     * Moves the kick watch to a new eventfd (SET_VRING_KICK on a started ring). The new fd is watched
     * before the old one is let go, so if epoll refuses it the ring keeps its old watch. Worker only.
     */
    void replaceKick(int fd) throws NativeException {
        long token = worker.watch(fd, LinuxSys.EPOLLIN, this);
        worker.unwatch(kickToken);
        kickToken = token;
        kickFd = fd;
        serveKick(); // a kick written to the old fd just before the switch is not lost
    }

    /** Enabled: hand the queue to the device. Idempotent. Worker only. */
    void handOver() {
        if (!handed) {
            handed = true;
            queue.setEnabled(true);
            Virtqueue view = tap == null ? queue : tap.queueView(queue, transmit, this::rekick);
            instrumented = view instanceof InstrumentedQueue ? (InstrumentedQueue) view : null;
            runtime.startQueue(index, view);
            // the driver may have kicked before the ring was started or enabled; that kick was drained
            // without a device to deliver it to (rust-vmm/vhost #247), so deliver one now
            deliverKick();
        }
    }

    /**
     * Disabled: take the queue back, keeping its indices, and discard what is pending on a transmit
     * queue. Idempotent. Worker only.
     */
    void takeBack() {
        release(false);
        discard();
    }

    /**
     * Stops the ring: the device gives the queue back and kicks are no longer watched. Pending buffers
     * stay, whatever the queue: they are the ring's state that GET_VRING_BASE reports. {@code pause}: for
     * a hot upgrade's handover ({@link org.jvhost.spi.VhostUserDevice#pauseQueue}). Worker only.
     */
    void stop(boolean pause) {
        stopped = true;
        release(pause);
        worker.unwatch(kickToken);
    }

    /** The device gives the queue back if it holds it; the ring leaves the ready list and polled set. */
    private void release(boolean pause) {
        leaveReady();
        leavePolling();
        if (unsettled) {
            unsettled = false;
            worker.removeUnsettled(this);
        }
        if (handed) {
            handed = false;
            queue.setEnabled(false);
            runtime.stopQueue(index, pause);
        }
    }

    @Override
    public void onReady(int events) {
        long kicks = 0;
        try {
            kicks = LinuxSys.eventfdRead(kickFd);
        } catch (NativeException e) {
            // the front-end's eventfd went bad; the ring still works for kicks already counted
        }
        worker.kicked(kicks); // several counted during a sleep: the worker's poll window grows
        if (instrumented != null && handed) {
            instrumented.kicked(kicks); // strict mode counts kicks the driver should not have sent
        }
        if (!handed || runtime.isFailed()) {
            // started but disabled: a transmit queue's chains are discarded after a grace for an enable
            // already on its way, any other ring's kick is drained here and replayed by handOver(); or
            // the device failed: its kicks are dropped without touching guest memory (it may be what
            // failed), which discard() also respects
            discardAfterGrace();
            return;
        }
        if (polling) {
            // the driver kicked before it saw the suppression (or its index wrapped onto a stale
            // avail_event): renew the suppression (a guest-memory write, raised by deliverKick's guard)
            queue.setHostPolling(true);
        }
        deliverKick();
    }

    /** Posts a kick to the ring's worker (from any thread): a stalled queue goes on where it stopped. */
    private void rekick() {
        worker.execute(() -> {
            if (handed && !runtime.isFailed()) {
                deliverKick();
            }
        });
    }

    /** Discards what a kick on a disabled transmit ring brought once {@link #DISCARD_GRACE_MS} passed. */
    private void discardAfterGrace() {
        if (!transmit || discardPending || runtime.isFailed()) {
            return;
        }
        discardPending = true;
        Deadlines.after(DISCARD_GRACE_MS, worker::post, () -> {
            discardPending = false;
            if (!stopped) {
                discard(); // nothing to do if an enable handed the queue over meanwhile
            }
        });
    }

    /** A kick for the ring in whichever state it is: to the device if it holds the queue, else discarded. */
    private void serveKick() {
        if (handed) {
            deliverKick();
        } else {
            discard();
        }
    }

    /**
     * Hands the device a kick, then decides how the ring goes on: on the ready list if the device left
     * work it will get no kick for, else polled if polling is on and the kick found work (only for a
     * device that wants kicks at all: one that suppressed them for good, like the loopback's RX, is
     * not polled either), else waiting for the driver's next kick.
     */
    private void deliverKick() {
        if (runtime.isFailed()) {
            return;
        }
        try {
            deliverKickUnguarded();
            runtime.raisePendingFault();
        } catch (Throwable t) {
            // Our own reads of avail->idx touch guest memory too: a front-end that shrank its memory file
            // raises InternalError (SIGBUS, java-stack §7) for them, at the latest in raisePendingFault.
            // It is the same fault as in the device's callback, so it fails the device the same way.
            runtime.fail("handleKick", index, t);
        }
    }

    private void deliverKickUnguarded() {
        int seen = queue.availIndex(); // raises a fault of its own before the device runs
        int before = queue.nextAvail();
        int replayBefore = queue.replayPending();
        runtime.kick(index);
        if (queue.deferredCount() > 0) {
            // requests the device completed during the kick (a page-cache read on io_uring completes
            // inside the submitting call) are published now, not after a turn of the loop for the posted drain
            drainCompletions();
        }
        int after = queue.nextAvail();
        // 16-bit indices: "after" is at or past "seen" if the distance from seen to after is below 2^15
        kickedAvail = ((after - seen) & 0xffff) < 0x8000 ? after : seen;
        // chains replayed after a restart (inflight tracking) are taken without moving the avail index
        boolean took = after != before || queue.replayPending() != replayBefore;
        if (!took || !handed || runtime.isFailed() || queue.isBroken()) {
            return; // took nothing: nothing to re-deliver, and no traffic worth polling for
        }
        markUnsettled();
        if (queue.replayPending() > 0 || queue.availIndex() != after || !queue.deviceWantsKicks()) {
            markReady();
        } else if (!polling && worker.pollingEnabled() && !awaitingCompletions()) {
            polling = true;
            queue.setHostPolling(true);
            worker.startPolling(this);
        }
    }

    /**
     * Started but disabled: on a transmit queue, returns the available chains with nothing written (the
     * driver's "sent", the frames dropped) and signals as the driver's notification settings say; the
     * usual disable, drain, enable, re-check, so a buffer published meanwhile is not left without a kick.
     * Past {@link #DISCARD_BUDGET} chains it goes on the ready list for the rest. Not on a failed device,
     * which serves nothing until it is reset.
     */
    private void discard() {
        if (!transmit || handed || runtime.isFailed()) {
            return;
        }
        try {
            discardUnguarded();
        } catch (Throwable t) {
            runtime.fail("discard while disabled", index, t); // a guest-memory fault, as in deliverKick
        }
    }

    private void discardUnguarded() {
        if (discardChain == null) {
            discardChain = queue.newChain();
        }
        int budget = DISCARD_BUDGET;
        do {
            queue.disableNotifications();
            while (queue.pop(discardChain)) {
                queue.addUsed(discardChain, 0);
                if (--budget == 0) {
                    queue.signalUsed();
                    markReady(); // kicks stay off meanwhile; the ready list brings us back
                    return;
                }
            }
            queue.signalUsed();
        } while (queue.enableNotifications());
    }

    @Override
    public void serveReady() {
        ready = false;
        serveKick();
    }

    @Override
    public boolean poll() {
        if (!handed) {
            return false;
        }
        if (ready) {
            return true; // the ready list serves it meanwhile; the ring is still busy
        }
        if (runtime.isFailed() || availIndexGuarded() == kickedAvail) {
            return false;
        }
        deliverKick();
        return true;
    }

    /** avail->idx, or {@link #kickedAvail} after failing the device if reading it faults (see deliverKick). */
    private int availIndexGuarded() {
        try {
            int avail = queue.availIndex();
            runtime.raisePendingFault();
            return avail;
        } catch (Throwable t) {
            runtime.fail("handleKick", index, t);
            return kickedAvail;
        }
    }

    /**
     * The device still has requests of this ring in flight on threads of its own (a blk device's I/O):
     * not polled then. The driver that waits for them adds no work meanwhile, their completion wakes the
     * worker anyway, and a polling worker would take the CPU those threads need (a buffered 1 MiB write
     * punted to an io_uring worker on the back-end's one CPU ran at a third of its speed beside it).
     */
    @Override
    public boolean awaitingCompletions() {
        return queue.deferredCount() > 0;
    }

    @Override
    public boolean endPolling() {
        try {
            queue.setHostPolling(false); // requests kicks again (if the device wants them) and fences
            runtime.raisePendingFault(); // the request is a guest-memory write
        } catch (Throwable t) {
            runtime.fail("handleKick", index, t);
        }
        if (handed && !runtime.isFailed() && !queue.isBroken() && availIndexGuarded() != kickedAvail) {
            // published while kicks were off, so the driver may not have kicked: keep polling
            queue.setHostPolling(true);
            deliverKick();
            return true;
        }
        polling = false;
        return false;
    }

    /**
     * The worker's second look at a ring that served work, once it has been idle a moment
     * ({@link Worker#markUnsettled} says why): an interrupt the queue skipped that the driver now asks
     * for is sent, and buffers made available without a kick while the ring waits for kicks are
     * delivered as if kicked. Worker only.
     */
    @Override
    public void settle() {
        unsettled = false;
        if (!handed || stopped || runtime.isFailed() || queue.isBroken()) {
            return;
        }
        try {
            if (queue.signalIfMissed()) {
                LOG.debug("{} queue {}: the driver asked for an interrupt after the queue skipped it; sent", runtime.name(),
                        index);
            }
            runtime.raisePendingFault(); // used_event or the flags are guest memory
        } catch (Throwable t) {
            runtime.fail("handleKick", index, t);
            return;
        }
        if (!polling && !ready && queue.deviceWantsKicks() && availIndexGuarded() != kickedAvail) {
            LOG.debug("{} queue {}: buffers made available without a kick; served", runtime.name(), index);
            deliverKick();
        }
    }

    private void markUnsettled() {
        if (!unsettled) {
            unsettled = true;
            worker.markUnsettled(this);
        }
    }

    /** Puts the ring on its worker's ready list unless it is there already. Worker only. */
    private void markReady() {
        if (!ready) {
            ready = true;
            worker.markReady(this);
        }
    }

    /** The device and queue, for the watchdog's report of a callback that hangs. */
    @Override
    public String toString() {
        return runtime.name() + " queue " + index;
    }

    /** Leaves the ready list (ring disabled or stopped). Worker only. */
    private void leaveReady() {
        if (ready) {
            ready = false;
            worker.removeReady(this);
        }
    }

    /** Leaves the polled set (ring disabled or stopped), giving the driver its kicks back. Worker only. */
    private void leavePolling() {
        if (polling) {
            polling = false;
            worker.stopPolling(this);
            queue.setHostPolling(false);
        }
    }
}
