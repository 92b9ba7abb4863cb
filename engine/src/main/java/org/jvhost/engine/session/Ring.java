package org.jvhost.engine.session;

import org.jvhost.engine.event.DeviceRuntime;
import org.jvhost.engine.event.EventHandler;
import org.jvhost.engine.event.Worker;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.jvhost.engine.virtq.SplitQueue;

/**
 * A started ring: its live queue and its kick watch. Everything but construction runs on the ring's
 * worker, which is what lets the device use the queue without locks.
 */
final class Ring implements EventHandler {
    final int index;
    final SplitQueue queue;
    final Worker worker;
    private final DeviceRuntime runtime;
    private int kickFd;
    private long kickToken = -1;
    /** The device holds the queue (started and enabled). Worker only. */
    private boolean handed;

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
        if (handed) {
            runtime.kick(index);
        }
        // not handed: started but disabled. The kick is drained here and replayed by handOver()
    }
}
