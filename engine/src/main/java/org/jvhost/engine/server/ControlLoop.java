package org.jvhost.engine.server;

import java.util.PriorityQueue;
import java.util.concurrent.TimeoutException;
import org.jvhost.engine.event.EpollSet;
import org.jvhost.engine.event.EventHandler;
import org.jvhost.engine.event.HandlerSlots;
import org.jvhost.engine.event.LoopMailbox;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One control thread ({@code jvhost-control-N}) serving the sockets of many devices: listening
 * sockets, front-end connections, connect attempts and their back-off timers, all in one epoll set.
 * Everything registered here runs on this thread only, so device servers and sessions need no locks.
 *
 * <p>Handlers never block: reads are non-blocking and a half-received message waits in its
 * connection's buffer; a session posts its commands to workers and is answered through
 * {@link #execute}, so a hanging device callback never holds up this loop.
 *
 * <p>The fds and their handlers are {@link HandlerSlots}, as on a worker. Control traffic is rare (a few
 * dozen messages per connection), so the timer queue is an ordinary collection.
 */
final class ControlLoop implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ControlLoop.class);
    private static final long JOIN_MS = 3000;

    /** A scheduled task; {@link #cancel()} before it runs and it never does. */
    static final class Timer implements Comparable<Timer> {
        private final long due;
        private final long seq;
        private final Runnable task;
        private boolean cancelled;

        private Timer(long due, long seq, Runnable task) {
            this.due = due;
            this.seq = seq;
            this.task = task;
        }

        /** Loop thread only. */
        void cancel() {
            cancelled = true;
        }

        @Override
        public int compareTo(Timer o) {
            int c = Long.compare(due, o.due);
            return c != 0 ? c : Long.compare(seq, o.seq);
        }
    }

    private final int id;
    private final EpollSet epoll;
    private final LoopMailbox mailbox;
    private final HandlerSlots slots;
    private final PriorityQueue<Timer> timers = new PriorityQueue<>();
    private final Thread thread;
    private long timerSeq;
    private volatile boolean running = true;

    ControlLoop(int id) throws NativeException {
        this.id = id;
        this.epoll = new EpollSet("jvhost-control-" + id);
        this.mailbox = epoll.mailbox();
        this.slots = new HandlerSlots(epoll);
        this.thread = new Thread(this::loop, "jvhost-control-" + id);
        this.thread.setDaemon(true);
        mailbox.bind(thread);
        this.thread.start();
    }

    boolean inLoop() {
        return mailbox.inLoop();
    }

    /** Runs {@code command} on the loop thread: now if called from it, otherwise posted. */
    void execute(Runnable command) {
        mailbox.execute(command);
    }

    /**
     * Runs {@code command} on the loop thread and waits for it; its exception is rethrown here.
     *
     * @throws TimeoutException if the loop did not run it within {@code timeoutMs}
     */
    void call(Runnable command, long timeoutMs) throws TimeoutException {
        mailbox.call(command, timeoutMs);
    }

    /**
     * Watches {@code fd} (level-triggered) for {@code events}; {@code handler} runs on the loop thread when
     * it is ready. Loop thread only. Returns the token.
     */
    long register(int fd, int events, EventHandler handler) throws NativeException {
        assert inLoop();
        return slots.add(fd, events, handler);
    }

    /** Changes the events watched for {@code token}; loop thread only. */
    void modify(long token, int events) throws NativeException {
        assert inLoop();
        slots.modify(token, events);
    }

    /** Stops watching; idempotent; loop thread only. The caller still owns (and later closes) the fd. */
    void unregister(long token) {
        assert inLoop();
        slots.remove(token);
    }

    /** Runs {@code task} on the loop thread after {@code delayMs}; loop thread only. */
    Timer schedule(long delayMs, Runnable task) {
        assert inLoop();
        Timer t = new Timer(System.nanoTime() + delayMs * 1_000_000L, timerSeq++, task);
        timers.add(t);
        return t;
    }

    /**
     * Runs turns until closed. A throwable escaping a turn (an engine bug, or a guest-memory fault
     * HotSpot raises late, at the next native call: see {@link LinuxSys#raisePendingFault()}) is logged
     * and the loop goes on, since it serves the sockets of many devices; only a broken epoll set ends it.
     */
    private void loop() {
        while (running) {
            try {
                if (!turn()) {
                    return;
                }
            } catch (Throwable t) {
                LOG.error("jvhost-control-{}: {} outside any handler; the control loop goes on", id,
                        t instanceof InternalError ? "a guest-memory fault" : "a failure", t);
            }
        }
        mailbox.runAll();
    }

    /** One epoll_wait and the handlers, commands and timers it makes due; false if epoll broke. */
    private boolean turn() {
        try {
            epoll.waitAndDispatch(waitMs(), this::dispatch);
        } catch (NativeException e) {
            LOG.error("jvhost-control-{}: epoll_wait failed, the control loop stops: {}", id, e.getMessage());
            return false;
        }
        mailbox.runAll();
        runTimers();
        return true;
    }

    /**
     * Milliseconds until the next timer, -1 for none (rounded up so a timer is never run early); 0 while
     * a command waits that this thread posted itself (a timer's), which wrote no wake-up (LoopMailbox#post).
     */
    private int waitMs() {
        if (!mailbox.isEmpty()) {
            return 0;
        }
        Timer t;
        while ((t = timers.peek()) != null && t.cancelled) {
            timers.poll();
        }
        if (t == null) {
            return -1;
        }
        long ns = t.due - System.nanoTime();
        return ns <= 0 ? 0 : (int) Math.min(Integer.MAX_VALUE, (ns + 999_999) / 1_000_000);
    }

    private void dispatch(int ev, long token) {
        EventHandler h = slots.handler(token);
        if (h == null) {
            return; // unregistered earlier in this batch
        }
        try {
            h.onReady(ev);
        } catch (Throwable t) {
            // handlers catch what they expect; this only catches engine bugs, which must not stop other devices
            LOG.error("jvhost-control-{}: event handler failed", id, t);
        }
    }

    private void runTimers() {
        long now = System.nanoTime();
        Timer t;
        while ((t = timers.peek()) != null && t.due - now <= 0) {
            timers.poll();
            if (!t.cancelled) {
                try {
                    t.task.run();
                } catch (Throwable e) {
                    LOG.error("jvhost-control-{}: timer failed", id, e);
                }
            }
        }
    }

    /** Stops the thread after the commands already posted, and closes the epoll set. */
    @Override
    public void close() {
        mailbox.post(() -> running = false);
        epoll.closeAfter(thread, JOIN_MS);
    }
}
