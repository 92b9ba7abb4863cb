package org.jvhost.engine.event;

import com.sun.jna.Memory;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One event-loop thread: an epoll set, a command queue woken through an eventfd, and a slot table
 * mapping epoll tokens to handlers. The slot table is touched only on this thread (registrations are
 * commands), so dispatching an event is an array read with no lock and no allocation.
 *
 * <p>A token is {@code generation << 32 | slot}: an event still queued in the current epoll batch for
 * a watch that a handler just removed carries the old generation and is dropped instead of reaching
 * whatever reused the slot.
 */
public final class Worker implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Worker.class);
    private static final int MAX_EVENTS = 64;
    private static final long WAKE_TOKEN = -1L;

    private final int id;
    private final int epfd;
    private final int wakeFd;
    private final Memory events = new Memory((long) MAX_EVENTS * LinuxSys.EPOLL_EVENT_SIZE);
    private final ConcurrentLinkedQueue<Runnable> commands = new ConcurrentLinkedQueue<>();
    private final Thread thread;
    private volatile boolean running = true;

    private EventHandler[] handlers = new EventHandler[16];
    private int[] generations = new int[16];
    private int[] slotFds = new int[16];

    Worker(int id) throws NativeException {
        this.id = id;
        this.epfd = LinuxSys.epollCreate();
        int wake = -1;
        try {
            wake = LinuxSys.eventfd(LinuxSys.EFD_NONBLOCK | LinuxSys.EFD_CLOEXEC);
            LinuxSys.epollCtl(epfd, LinuxSys.EPOLL_CTL_ADD, wake, LinuxSys.EPOLLIN, WAKE_TOKEN);
        } catch (NativeException e) {
            LinuxSys.closeQuietly(wake);
            LinuxSys.closeQuietly(epfd);
            throw e;
        }
        this.wakeFd = wake;
        java.util.Arrays.fill(slotFds, -1);
        this.thread = new Thread(this::loop, "jvhost-worker-" + id);
        this.thread.setDaemon(true);
        this.thread.start();
    }

    /** True if the caller runs on this worker. */
    public boolean inWorker() {
        return Thread.currentThread() == thread;
    }

    /** Runs {@code command} on this worker: now if called from it, otherwise posted. */
    public void execute(Runnable command) {
        if (inWorker()) {
            command.run();
        } else {
            commands.add(command);
            wake();
        }
    }

    /**
     * Runs {@code command} on this worker and waits for it.
     *
     * @throws TimeoutException if the worker did not finish it in time (a device callback hangs)
     */
    public void call(Runnable command, long timeoutMs) throws TimeoutException {
        if (inWorker()) {
            command.run();
            return;
        }
        CompletableFuture<Void> done = new CompletableFuture<>();
        commands.add(() -> {
            try {
                command.run();
                done.complete(null);
            } catch (Throwable t) {
                done.completeExceptionally(t);
            }
        });
        wake();
        try {
            done.get(timeoutMs, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new TimeoutException("interrupted while waiting for jvhost-worker-" + id);
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
            throw new TimeoutException("jvhost-worker-" + id + " did not run a command within " + timeoutMs + " ms");
        }
    }

    /** Adds {@code fd} to the epoll set (worker thread only). Returns the token for {@link #unwatch}. */
    public long watch(int fd, int events, EventHandler handler) throws NativeException {
        assert inWorker();
        int slot = freeSlot();
        long token = ((long) generations[slot] << 32) | slot;
        LinuxSys.epollCtl(epfd, LinuxSys.EPOLL_CTL_ADD, fd, events, token);
        handlers[slot] = handler;
        slotFds[slot] = fd;
        return token;
    }

    /** Changes the events watched for {@code token} (worker thread only; 0 pauses). */
    public void modify(long token, int events) throws NativeException {
        assert inWorker();
        int slot = (int) token;
        if (handlers[slot] != null && generations[slot] == (int) (token >>> 32)) {
            LinuxSys.epollCtl(epfd, LinuxSys.EPOLL_CTL_MOD, slotFds[slot], events, token);
        }
    }

    /** Removes the watch (worker thread only). Idempotent. The caller still owns the fd. */
    public void unwatch(long token) {
        assert inWorker();
        int slot = (int) token;
        if (slot < 0 || slot >= handlers.length || handlers[slot] == null
                || generations[slot] != (int) (token >>> 32)) {
            return;
        }
        try {
            LinuxSys.epollCtl(epfd, LinuxSys.EPOLL_CTL_DEL, slotFds[slot], 0, 0);
        } catch (NativeException e) {
            LOG.debug("jvhost-worker-{}: epoll DEL fd {}: {}", id, slotFds[slot], e.getMessage());
        }
        handlers[slot] = null;
        slotFds[slot] = -1;
        generations[slot]++;
    }

    private int freeSlot() {
        for (int i = 0; i < handlers.length; i++) {
            if (handlers[i] == null) {
                return i;
            }
        }
        int old = handlers.length;
        handlers = java.util.Arrays.copyOf(handlers, old * 2);
        generations = java.util.Arrays.copyOf(generations, old * 2);
        slotFds = java.util.Arrays.copyOf(slotFds, old * 2);
        java.util.Arrays.fill(slotFds, old, old * 2, -1);
        return old;
    }

    private void wake() {
        try {
            LinuxSys.eventfdWrite(wakeFd, 1);
        } catch (NativeException e) {
            LOG.error("jvhost-worker-{}: cannot wake: {}", id, e.getMessage());
        }
    }

    private void loop() {
        while (running) {
            int n;
            try {
                n = LinuxSys.epollWait(epfd, events, MAX_EVENTS, -1);
            } catch (NativeException e) {
                LOG.error("jvhost-worker-{}: epoll_wait failed, worker stops: {}", id, e.getMessage());
                return;
            }
            for (int i = 0; i < n; i++) {
                dispatch(events.getInt((long) i * LinuxSys.EPOLL_EVENT_SIZE),
                        events.getLong((long) i * LinuxSys.EPOLL_EVENT_SIZE + 4));
            }
            runCommands();
        }
        runCommands();
    }

    private void dispatch(int ev, long token) {
        if (token == WAKE_TOKEN) {
            try {
                LinuxSys.eventfdRead(wakeFd);
            } catch (NativeException e) {
                LOG.error("jvhost-worker-{}: wake eventfd: {}", id, e.getMessage());
            }
            return;
        }
        int slot = (int) token;
        EventHandler h = slot >= 0 && slot < handlers.length ? handlers[slot] : null;
        if (h == null || generations[slot] != (int) (token >>> 32)) {
            return; // removed earlier in this batch
        }
        try {
            h.onReady(ev);
        } catch (Throwable t) {
            // handlers guard device code themselves; this only catches engine bugs, which must not kill the loop
            LOG.error("jvhost-worker-{}: event handler failed", id, t);
        }
    }

    private void runCommands() {
        Runnable c;
        while ((c = commands.poll()) != null) {
            try {
                c.run();
            } catch (Throwable t) {
                LOG.error("jvhost-worker-{}: command failed", id, t);
            }
        }
    }

    /** Stops the thread (after the commands already posted) and closes the epoll set. */
    @Override
    public void close() {
        commands.add(() -> running = false);
        wake();
        try {
            thread.join(2000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (thread.isAlive()) {
            LOG.warn("jvhost-worker-{} did not stop within 2 s", id);
            return; // leave the fds: closing them under a running epoll_wait would be worse
        }
        LinuxSys.closeQuietly(wakeFd);
        LinuxSys.closeQuietly(epfd);
        events.close();
    }

    public int id() {
        return id;
    }
}
