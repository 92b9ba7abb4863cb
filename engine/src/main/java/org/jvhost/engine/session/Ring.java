package org.jvhost.engine.session;

import org.jvhost.engine.event.DeviceRuntime;
import org.jvhost.engine.event.EventHandler;
import org.jvhost.engine.event.PolledQueue;
import org.jvhost.engine.event.Worker;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.jvhost.engine.virtq.SplitQueue;

/**
 * A started ring: its live queue and its kick watch. Everything but construction runs on the ring's
 * worker, which is what lets the device use the queue without locks.
 *
 * <p>Polling: a kick that made the device pop buffers puts the ring into host polling
 * ({@link SplitQueue#setHostPolling}: the driver stops kicking) and into its worker's polled set. The
 * worker then delivers a kick to the device whenever avail->idx moved since the last one it delivered,
 * exactly when a driver would have kicked, until the ring is idle for the polling time. A ring that
 * is disabled or stopped leaves the polled set first.
 */
final class Ring implements EventHandler, PolledQueue {
    final int index;
    final SplitQueue queue;
    final Worker worker;
    private final DeviceRuntime runtime;
    private int kickFd;
    private long kickToken = -1;
    /** The device holds the queue (started and enabled). Worker only. */
    private boolean handed;
    /** The worker polls this ring. Worker only. */
    private boolean polling;
    /** avail->idx read just before the last kick delivered to the device. Worker only. */
    private int kickedAvail;

    Ring(int index, SplitQueue queue, Worker worker, DeviceRuntime runtime, int kickFd) {
        this.index = index;
        this.queue = queue;
        this.worker = worker;
        this.runtime = runtime;
        this.kickFd = kickFd;
    }

    /** Starts watching the kick eventfd. Worker only. */
    void watchKick() throws NativeException {
        kickToken = worker.watch(kickFd, LinuxSys.EPOLLIN, this);
    }

    /** Moves the kick watch to a new eventfd (SET_VRING_KICK on a started ring). Worker only. */
    void replaceKick(int fd) throws NativeException {
        worker.unwatch(kickToken);
        kickFd = fd;
        watchKick();
        if (handed) {
            runtime.kick(index); // a kick written to the old fd just before the switch is not lost
        }
    }

    /** Enabled: hand the queue to the device. Idempotent. Worker only. */
    void handOver() {
        if (!handed) {
            handed = true;
            queue.setEnabled(true);
            runtime.startQueue(index, queue);
        }
    }

    /** Disabled or stopped: take the queue back, keeping its indices. Idempotent. Worker only. */
    void takeBack() {
        leavePolling();
        if (handed) {
            handed = false;
            queue.setEnabled(false);
            runtime.stopQueue(index);
        }
    }

    /** Stops the ring: the device gives the queue back and kicks are no longer watched. Worker only. */
    void stop() {
        takeBack();
        worker.unwatch(kickToken);
    }

    @Override
    public void onReady(int events) {
        try {
            LinuxSys.eventfdRead(kickFd);
        } catch (NativeException e) {
            // the front-end's eventfd went bad; the ring still works for kicks already counted
        }
        if (!handed) {
            return; // started but disabled: the kick is drained here and replayed by handOver()
        }
        if (polling) {
            // the driver kicked before it saw the suppression (or its index wrapped onto a stale
            // avail_event): renew the suppression and deliver the kick
            queue.setHostPolling(true);
            deliverKick();
            return;
        }
        int before = queue.nextAvail();
        deliverKick();
        // Poll only queues where the kick made the device take buffers and that want kicks at all (a
        // device that suppressed them for good, like the loopback's RX, is not polled either).
        if (worker.pollingEnabled() && queue.nextAvail() != before && queue.deviceWantsKicks()
                && !runtime.isFailed() && !queue.isBroken()) {
            polling = true;
            queue.setHostPolling(true);
            worker.startPolling(this);
        }
    }

    /** Hands the device a kick, remembering avail->idx as it was before, so later buffers are seen as new. */
    private void deliverKick() {
        kickedAvail = queue.availIndex();
        runtime.kick(index);
    }

    @Override
    public boolean poll() {
        if (queue.availIndex() == kickedAvail || !handed) {
            return false;
        }
        deliverKick();
        return true;
    }

    @Override
    public boolean endPolling() {
        queue.setHostPolling(false); // requests kicks again (if the device wants them) and fences
        if (handed && !runtime.isFailed() && !queue.isBroken() && queue.availIndex() != kickedAvail) {
            // published while kicks were off, so the driver may not have kicked: keep polling
            queue.setHostPolling(true);
            deliverKick();
            return true;
        }
        polling = false;
        return false;
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
