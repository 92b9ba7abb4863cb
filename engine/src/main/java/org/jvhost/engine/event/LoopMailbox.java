package org.jvhost.engine.event;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The command side of one epoll loop thread (a {@link Worker} or the server's control loop): other
 * threads post commands, which the loop runs in order on its own thread, and may wait for one; a wake
 * eventfd in the loop's epoll set ends its epoll_wait so a posted command never waits for traffic. The
 * loop looks at its commands before it waits ({@link #isEmpty}), so a command the loop thread posts to
 * itself (a disk request completed inside the worker's own submit) costs no eventfd write and read.
 *
 * <p>Once closed, the mailbox never writes its wake fd again: the fd number may by then belong to
 * something else (a TAP, a disk file, a socket), and 8 stray bytes there would be a corrupt frame or
 * block. Posters (a back-end channel thread, a disk's completion thread) can outlive the loop, so
 * {@link #post} and {@link #close} exclude each other; posts still run concurrently with one another.
 */
public final class LoopMailbox {
    private static final Logger LOG = LoggerFactory.getLogger(LoopMailbox.class);

    private final String name;
    private final int wakeFd;
    private final ConcurrentLinkedQueue<Runnable> commands = new ConcurrentLinkedQueue<>();
    private volatile Thread thread;
    /** Read side: a post's wake-up write; write side: close. Guards {@link #closed}. */
    private final ReentrantReadWriteLock closing = new ReentrantReadWriteLock();
    private boolean closed;

    /**
     * Creates the wake eventfd and adds it to {@code epfd} under {@code wakeToken}.
     *
     * @param name the loop thread's name, for messages
     */
    public LoopMailbox(String name, int epfd, long wakeToken) throws NativeException {
        this.name = name;
        int wake = LinuxSys.eventfd(LinuxSys.EFD_NONBLOCK | LinuxSys.EFD_CLOEXEC);
        try {
            LinuxSys.epollCtl(epfd, LinuxSys.EPOLL_CTL_ADD, wake, LinuxSys.EPOLLIN, wakeToken);
        } catch (NativeException e) {
            LinuxSys.closeQuietly(wake);
            throw e;
        }
        this.wakeFd = wake;
    }

    /** Names the loop thread; call once, before it starts. */
    public void bind(Thread loopThread) {
        this.thread = loopThread;
    }

    /** True if the caller is the loop thread. */
    public boolean inLoop() {
        return Thread.currentThread() == thread;
    }

    /** Runs {@code command} on the loop thread: now if called from it, otherwise posted. */
    public void execute(Runnable command) {
        if (inLoop()) {
            command.run();
        } else {
            post(command);
        }
    }

    /**
     * Queues {@code command} for the loop thread, even when called from it, and wakes the loop unless
     * called from it (it runs its commands before it waits again). After {@link #close} the command is
     * dropped (the loop has stopped and would never run it).
     */
    public void post(Runnable command) {
        commands.add(command);
        if (inLoop()) {
            return;
        }
        closing.readLock().lock();
        try {
            if (closed) {
                LOG.debug("{}: stopped; a command posted after that is dropped", name);
                return;
            }
            LinuxSys.eventfdWrite(wakeFd, 1);
        } catch (NativeException e) {
            LOG.error("{}: cannot wake: {}", name, e.getMessage());
        } finally {
            closing.readLock().unlock();
        }
    }

    /**
     * Runs {@code command} on the loop thread and waits for it; its exception is rethrown here.
     *
     * @throws TimeoutException if the loop did not run it within {@code timeoutMs} (a callback hangs)
     */
    public void call(Runnable command, long timeoutMs) throws TimeoutException {
        if (inLoop()) {
            command.run();
            return;
        }
        CompletableFuture<Void> done = completion(this::post, command);
        try {
            done.get(timeoutMs, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new TimeoutException("interrupted while waiting for " + name);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof RuntimeException) {
                throw (RuntimeException) c;
            }
            if (c instanceof Error) {
                throw (Error) c;
            }
            throw new IllegalStateException(c);
        } catch (TimeoutException e) {
            throw new TimeoutException(name + " did not run a command within " + timeoutMs + " ms");
        }
    }

    /**
     * Hands {@code command} to {@code loop} (a loop's execute) and returns what completes once it ran:
     * normally, or with what it threw.
     */
    public static CompletableFuture<Void> completion(java.util.function.Consumer<Runnable> loop, Runnable command) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        loop.accept(() -> {
            try {
                command.run();
                done.complete(null);
            } catch (Throwable t) {
                done.completeExceptionally(t);
            }
        });
        return done;
    }

    /** True if no command waits: a loop checks it before it waits (see the class comment), and while it spins. */
    public boolean isEmpty() {
        return commands.isEmpty();
    }

    /** The wake eventfd fired: clears it. Loop thread only. */
    public void onWake() {
        try {
            LinuxSys.eventfdRead(wakeFd);
        } catch (NativeException e) {
            LOG.error("{}: wake eventfd: {}", name, e.getMessage());
        }
    }

    /** Runs every posted command; one that throws is logged and the rest still run. Loop thread only. */
    public void runAll() {
        runAll(null);
    }

    /** {@link #runAll()}, telling {@code tracker} (if not null) which command runs. Loop thread only. */
    void runAll(Tracker tracker) {
        Runnable c;
        while ((c = commands.poll()) != null) {
            if (tracker != null) {
                tracker.enter(c);
            }
            try {
                c.run();
            } catch (Throwable t) {
                LOG.error("{}: command failed", name, t);
            } finally {
                if (tracker != null) {
                    tracker.leave();
                }
            }
        }
    }

    /** Learns what a loop runs (a worker's record for the {@link CallbackWatchdog}). */
    interface Tracker {
        void enter(Object what);

        void leave();
    }

    /** Closes the wake eventfd, once the loop thread has stopped; later posts write nothing. */
    public void close() {
        closing.writeLock().lock();
        try {
            if (!closed) {
                closed = true;
                commands.clear();
                LinuxSys.closeQuietly(wakeFd);
            }
        } finally {
            closing.writeLock().unlock();
        }
    }
}
