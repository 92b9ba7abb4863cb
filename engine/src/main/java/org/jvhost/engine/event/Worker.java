package org.jvhost.engine.event;

import java.util.concurrent.TimeoutException;
import org.jvhost.engine.sys.NativeException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One event-loop thread: an epoll set, a command queue woken through an eventfd, and the
 * {@link HandlerSlots} mapping epoll tokens to handlers. The slots are touched only on this thread
 * (registrations are commands), so dispatching an event is an array read with no lock and no allocation.
 *
 * <h2>Adaptive busy-polling</h2>
 * A kick costs the driver an eventfd write and us an epoll wake-up and a read, several microseconds per
 * batch. So after a kick that found work, a ring may ask to be polled ({@link #startPolling}): it tells
 * the driver not to kick, and while any queue is polled the loop polls its queues and, between them,
 * checks epoll with a zero timeout, so other fds and commands are still served. A queue that found no
 * new work for the {@link PollWindow} re-arms its kicks ({@link PolledQueue#endPolling}) and leaves the
 * set; with an empty set the worker sleeps in epoll_wait as before. While polling, the other fds are
 * checked every {@link #EPOLL_WHILE_POLLING_NANOS}, so a kick for an unpolled queue of this worker waits
 * at most that long. This trades a busy CPU while traffic flows (and at most the window after it stops)
 * for fewer syscalls and sleeps per batch. Linux vhost-net's busyloop_timeout is the same idea; the
 * window adapts to the driver's pauses as the haltpoll governor's does (see {@link PollWindow}).
 *
 * <h2>Ready queues: fairness between queues</h2>
 * A device may return from a kick with buffers still available (after a budget of chains) or with
 * notifications left off; either way no new kick will come for that work, so the queue asks to be
 * called again ({@link #markReady}). Ready queues are served round-robin, one callback each per round,
 * and rounds are interleaved with a zero-timeout epoll_wait and the posted commands exactly like polled
 * queues: a ring the driver keeps full therefore costs the other queues, fd watches and commands of
 * this worker at most one callback of it per round, instead of starving them for as long as the
 * traffic lasts. The worker sleeps in epoll only when no queue is ready and none is polled. The list
 * is a preallocated ring of slots (a queue is on it at most once), so a re-delivery allocates nothing.
 */
public final class Worker implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Worker.class);
    private static final long JOIN_MS = 2000;
    /**
     * While queues are polled or ready, how often the epoll set is still checked (zero timeout) for other
     * fds: an epoll_wait per round would cost about as much as the work it polls for. Commands are run
     * after the round in which they are posted.
     */
    private static final long EPOLL_WHILE_POLLING_NANOS = 20_000;
    /** How long the worker waits, idle, before it settles the queues that served work ({@link #markUnsettled}). */
    public static final int SETTLE_MS = 1;

    private final int id;
    private final EpollSet epoll;
    private final LoopMailbox mailbox;
    private final EpollSet.Dispatch dispatch = this::dispatch;
    private final Thread thread;
    private volatile boolean running = true;
    /** {@link #holdPolling}. */
    private volatile boolean pollingHeld;
    /** In, or just woken from, a blocking epoll_wait begun at {@link #sleepStart}; worker thread only. */
    private boolean asleep;
    private long sleepStart;
    /** The most kicks one eventfd had counted when the worker woke; worker thread only. */
    private long kicksOnWake;
    /** The last turn settled the queues after an idle wait and left nothing to do: the sleep goes on. */
    private boolean sleepGoesOn;

    /** Queues being polled, and the window after which an idle one goes back to kicks; worker thread only. */
    private final PolledSet polled;

    /** Queues whose device left work, served round-robin; worker thread only. */
    private final ReadyList<ReadyQueue> ready = new ReadyList<>();

    /** Queues that served work since their last {@link SettlingQueue#settle}; worker thread only. */
    private final ReadyList<SettlingQueue> unsettled = new ReadyList<>();

    /** What runs now, for the {@link CallbackWatchdog}. */
    private final RunningCallback callback = new RunningCallback();

    private final HandlerSlots slots;
    /** When epoll was last checked while queues were polled or ready (System.nanoTime); worker thread only. */
    private long lastEpoll;

    /**
     * @param polling how long a polled queue may be idle before it re-arms kicks ({@link PollWindow})
     */
    Worker(int id, Polling polling) throws NativeException {
        this.id = id;
        this.polled = new PolledSet("jvhost-worker-" + id, callback, new PollWindow(polling));
        this.epoll = new EpollSet("jvhost-worker-" + id);
        this.mailbox = epoll.mailbox();
        this.slots = new HandlerSlots(epoll);
        this.thread = new Thread(this::loop, "jvhost-worker-" + id);
        this.thread.setDaemon(true);
        mailbox.bind(thread);
        this.thread.start();
    }

    /** True if the caller runs on this worker. */
    public boolean inWorker() {
        return mailbox.inLoop();
    }

    /** Runs {@code command} on this worker: now if called from it, otherwise posted. */
    public void execute(Runnable command) {
        mailbox.execute(command);
    }

    /** Queues {@code command} for this worker, even when called from it (it runs between callbacks). */
    public void post(Runnable command) {
        mailbox.post(command);
    }

    /**
     * Runs {@code command} on this worker and waits for it.
     *
     * @throws TimeoutException if the worker did not finish it in time (a device callback hangs)
     */
    public void call(Runnable command, long timeoutMs) throws TimeoutException {
        mailbox.call(command, timeoutMs);
    }

    /** Adds {@code fd} to the epoll set (worker thread only). Returns the token for {@link #unwatch}. */
    public long watch(int fd, int events, EventHandler handler) throws NativeException {
        assert inWorker();
        return slots.add(fd, events, handler);
    }

    /** Changes the events watched for {@code token} (worker thread only; 0 pauses). */
    public void modify(long token, int events) throws NativeException {
        assert inWorker();
        slots.modify(token, events);
    }

    /** Removes the watch (worker thread only). Idempotent. The caller still owns the fd. */
    public void unwatch(long token) {
        assert inWorker();
        slots.remove(token);
    }

    /** Whether queues may be polled on this worker (a polling time above 0 was configured, and not held). */
    public boolean pollingEnabled() {
        return !pollingHeld && polled.window.ceiling() > 0;
    }

    /**
     * Holds polling (any thread): while held no queue starts polling, and a polled queue leaves the set
     * (re-arming its kicks) at the first round it finds no work, so the worker sleeps between kicks. A
     * hot upgrade holds it from the first phase on: a worker spinning on a busy queue would otherwise
     * share its CPU with the control and handover threads and the successor just when their hops decide
     * the traffic gap (measured: 30 ms from asking a polling worker to stop a ring to its running the stop).
     */
    public void holdPolling(boolean hold) {
        pollingHeld = hold;
    }

    /**
     * Polls {@code queue} from now on until it is idle for the polling time (worker thread only). The
     * caller has already told the driver not to kick. No effect if polling is disabled or the queue is
     * already polled. The first queue to start after a sleep adapts the {@link PollWindow} to that sleep.
     */
    public void startPolling(PolledQueue queue) {
        assert inWorker();
        if (!pollingEnabled() || polled.contains(queue)) {
            return;
        }
        long now = System.nanoTime();
        if (asleep) {
            asleep = false;
            polled.window.wokeToWork(now - sleepStart, kicksOnWake);
        }
        polled.add(queue, now);
    }

    /**
     * Stops polling {@code queue} without calling it (worker thread only): a ring that stops or is
     * disabled leaves the set before anything else happens to it. Idempotent.
     */
    public void stopPolling(PolledQueue queue) {
        assert inWorker();
        polled.remove(queue);
    }

    /**
     * A kick handler read {@code kicks} from its eventfd (worker thread only): more than one counted
     * while the worker slept means the driver kept sending meanwhile, which the {@link PollWindow} takes
     * as a sleep that should have been polled through.
     */
    public void kicked(long kicks) {
        if (asleep && kicks > kicksOnWake) {
            kicksOnWake = kicks;
        }
    }

    /** The current polling window in nanoseconds (worker thread only; for tests). */
    public long pollWindowNanos() {
        return polled.window.nanos();
    }

    /** Whether {@code queue} is polled now (worker thread only; for tests and asserts). */
    public boolean isPolling(PolledQueue queue) {
        return polled.contains(queue);
    }

    /**
     * Puts {@code queue} on the ready list: its device returned with work left, so it is called again
     * ({@link ReadyQueue#serveReady}) after the queues already waiting, without a new kick (worker
     * thread only). The caller makes sure a queue is on the list at most once (a flag of its own).
     */
    public void markReady(ReadyQueue queue) {
        assert inWorker();
        ready.add(queue);
    }

    /**
     * Takes {@code queue} off the ready list without calling it (worker thread only): a ring that stops
     * or is disabled leaves the list before the device gives the queue back. Idempotent.
     */
    public void removeReady(ReadyQueue queue) {
        assert inWorker();
        ready.remove(queue);
    }

    /** Whether {@code queue} is on the ready list (worker thread only; for tests and asserts). */
    public boolean isReady(ReadyQueue queue) {
        return ready.contains(queue);
    }

    /**
     * Has {@code queue} {@linkplain SettlingQueue#settle settled} once the worker has been idle for
     * {@link #SETTLE_MS}: no event, command, ready or polled queue in that time (a worker kept busy by other
     * queues settles when it next idles). Worker thread only; the caller makes sure a queue is on the list
     * at most once (a flag of its own). {@link SettlingQueue} says why.
     */
    public void markUnsettled(SettlingQueue queue) {
        assert inWorker();
        unsettled.add(queue);
    }

    /** Takes {@code queue} off the settle list without calling it (worker thread only). Idempotent. */
    public void removeUnsettled(SettlingQueue queue) {
        assert inWorker();
        unsettled.remove(queue);
    }

    /** One round over the ready list: each queue ready when it starts gets one callback. */
    private void serveReady() {
        round(ready, ReadyQueue::serveReady, "ready queue"); // a queue may put itself back, behind the others
    }

    /** Settles the queues on the list when it starts (those that put themselves back wait for the next time). */
    private void settle() {
        round(unsettled, SettlingQueue::settle, "settling a queue");
    }

    /** Takes each queue on {@code list} when it starts off it and calls it, as the callback the watchdog sees. */
    private <Q> void round(ReadyList<Q> list, java.util.function.Consumer<Q> call, String what) {
        for (int n = list.size(); n > 0 && list.size() > 0; n--) {
            Q q = list.poll();
            callback.enter(q);
            try {
                call.accept(q);
            } catch (Throwable t) {
                // queues guard device code themselves; this only catches engine bugs
                LOG.error("jvhost-worker-{}: {} failed", id, what, t);
            } finally {
                callback.leave();
            }
        }
    }

    /**
     * Runs turns until closed. A throwable escaping a turn is logged and the loop goes on: this thread
     * serves every queue of many devices, so nothing short of a broken epoll set may end it. Device code
     * and guest-memory accesses are guarded where they run (handlers, ready and polled queues, commands),
     * and a guest-memory fault is raised inside its guard ({@link org.jvhost.engine.device.DeviceRuntime}), so nothing expected
     * arrives here: a fault that still does (an access outside any guard, an engine bug) fails no device.
     */
    private void loop() {
        while (running) {
            try {
                if (!turn()) {
                    return;
                }
            } catch (Throwable t) {
                LOG.error("jvhost-worker-{}: {} outside any device callback; no device is failed for it and the "
                        + "worker goes on", id, t instanceof InternalError ? "a guest-memory fault" : "a failure", t);
            }
        }
        mailbox.runAll();
    }

    /** One epoll_wait and what it found, then posted commands and queue work; false if epoll broke. */
    private boolean turn() {
        int timeout = -1;
        if (polled.size() > 0 || ready.size() > 0) {
            long now = System.nanoTime();
            if (now - lastEpoll < EPOLL_WHILE_POLLING_NANOS && mailbox.isEmpty()) {
                serveQueues(now);
                return true;
            }
            lastEpoll = now;
            timeout = 0;
        }
        if (timeout < 0 && !mailbox.isEmpty()) {
            timeout = 0; // a command this thread posted itself wrote no wake-up (LoopMailbox#post)
        }
        boolean settling = timeout < 0 && unsettled.size() > 0;
        if (settling) {
            timeout = SETTLE_MS; // idle: settle the queues that served work if nothing comes, then sleep
        }
        boolean goesOn = sleepGoesOn;
        sleepGoesOn = false;
        if (timeout != 0) {
            asleep = true;
            if (!goesOn) { // a settle's wait and the sleep after it are one sleep to the poll window
                sleepStart = System.nanoTime();
                kicksOnWake = 0;
            }
        }
        int events;
        try {
            events = epoll.waitAndDispatch(timeout, dispatch);
        } catch (NativeException e) {
            LOG.error("jvhost-worker-{}: epoll_wait failed, worker stops: {}", id, e.getMessage());
            return false;
        } finally {
            asleep = false; // what woke it has been dispatched: a later startPolling is no wake-up
        }
        mailbox.runAll(callback);
        if (polled.size() > 0 || ready.size() > 0) {
            serveQueues(System.nanoTime());
        }
        if (settling && events == 0 && nothingToDo()) {
            settle();
            sleepGoesOn = nothingToDo();
        }
        return true;
    }

    /** No command waits and no queue is polled or ready: the worker may sleep. */
    private boolean nothingToDo() {
        return mailbox.isEmpty() && polled.size() == 0 && ready.size() == 0;
    }

    /** One round over the ready queues, then one over the polled ones. */
    private void serveQueues(long now) {
        if (ready.size() > 0) {
            serveReady();
        }
        if (polled.size() > 0) {
            polled.pollRound(now, pollingHeld);
        }
    }

    private void dispatch(int ev, long token) {
        EventHandler h = slots.handler(token);
        if (h == null) {
            return; // removed earlier in this batch
        }
        callback.enter(h);
        try {
            h.onReady(ev);
        } catch (Throwable t) {
            // handlers guard device code themselves; this only catches engine bugs, which must not kill the loop
            LOG.error("jvhost-worker-{}: event handler failed", id, t);
        } finally {
            callback.leave();
        }
    }

    /** Reports the callback running now if it started more than {@code thresholdNanos} ago. Watchdog thread. */
    void reportStall(long now, long thresholdNanos) {
        callback.reportStall(now, thresholdNanos, thread);
    }

    /** Stops the thread (after the commands already posted) and closes the epoll set. */
    @Override
    public void close() {
        mailbox.post(() -> running = false);
        epoll.closeAfter(thread, JOIN_MS);
    }

    public int id() {
        return id;
    }
}
