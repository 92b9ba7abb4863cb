package org.jvhost.engine.server;

import java.io.IOException;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;
import org.jvhost.engine.device.DeviceRuntime;
import org.jvhost.engine.session.BackendSession;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.jvhost.engine.transport.Endpoint;
import org.newsclub.net.unix.AFUNIXSocketChannel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One front-end connection as its control loop serves it: the socket is watched for what the
 * {@link BackendSession} can take now (requests; room for an unsent reply; nothing while a request
 * waits for workers, when only a hang-up is reported), and a stalled front-end is cut off. Loop
 * thread only.
 *
 * <p>A front-end that starts a message and does not finish it within {@link #STALL_MS}, or leaves a
 * reply unread that long, is cut off: QEMU and DPDK send each message in one {@code sendmsg} and read
 * each reply at once, so such a stall is a stuck or hostile peer holding a buffer.
 */
final class Connection {
    private static final Logger LOG = LoggerFactory.getLogger(Connection.class);
    static final long STALL_MS = 5000;
    /** The longest the socket of an ended connection waits for its rings to stop before it closes anyway. */
    static final long CLOSE_GRACE_MS = 1000;

    private final DeviceRuntime runtime;
    private final ControlLoop loop;
    private final String where;
    private final Consumer<Connection> onEnd;
    private final CompletableFuture<Void> released = new CompletableFuture<>();
    /** Completes once a connection taken over runs again ({@link #start}); fails if it ends first. */
    private CompletableFuture<Void> restored = new CompletableFuture<>();
    private BackendSession session;
    /** The socket's fd (junixsocket owns it), for the epoll set and a hot upgrade's handover. */
    private int socketFd;
    private long token = -1;
    /** The events watched now: EPOLLIN while reading, EPOLLOUT while a reply is unsent, none while a request waits. */
    private int watched;
    private ControlLoop.Timer stallCheck;
    /** Closes the socket of an ended connection whose rings have not stopped in time; null otherwise. */
    private ControlLoop.Timer closeDeadline;
    private boolean ended;
    /** Frozen for a hot upgrade (or taken over and not started): the socket is not watched. */
    private boolean frozen;
    /**
     * The raw fd of a connection taken over (hot upgrade), closed with the connection: junixsocket does
     * not close an fd it was handed with {@code FileDescriptorCast.unsafeUsing}. -1 otherwise.
     */
    private int adoptedFd = -1;
    /** When the replay of a connection taken over began ({@link System#nanoTime()}), 0 when none runs. */
    private long replayStarted;

    private Connection(DeviceRuntime runtime, ControlLoop loop, String where, Consumer<Connection> onEnd) {
        this.runtime = runtime;
        this.loop = loop;
        this.where = where;
        this.onEnd = onEnd;
    }

    /**
     * Starts serving {@code ch} on {@code loop}; {@code onEnd} runs when the connection ends (the
     * session then releases its fds and mappings: {@link #released()}).
     *
     * @throws IOException if the socket cannot be set up or watched (it is closed then)
     */
    static Connection open(DeviceRuntime runtime, ControlLoop loop, String where, AFUNIXSocketChannel ch,
            Consumer<Connection> onEnd) throws IOException {
        Connection c = create(runtime, loop, where, ch, onEnd);
        try {
            c.register();
        } catch (NativeException | RuntimeException e) {
            c.session.close(() -> { }, () -> c.released.complete(null));
            throw new IOException(e.getMessage(), e);
        }
        return c;
    }

    /**
     * Hot upgrade: a connection the previous jvhost handed over ({@code fd}, the raw number behind
     * {@code ch}), set up now by {@code setup} (its {@link org.jvhost.engine.session.SessionImage.Part#SETUP},
     * or nothing) without reading the socket; {@link #start} then serves it.
     *
     * @throws IOException if the socket cannot be set up or a request of {@code setup} fails (the session is
     *                     released then; {@code fd} stays the caller's)
     */
    static Connection adopt(DeviceRuntime runtime, ControlLoop loop, String where, AFUNIXSocketChannel ch, int fd,
            java.util.List<org.jvhost.engine.transport.Message> setup, Consumer<Connection> onEnd) throws IOException {
        Connection c = create(runtime, loop, where, ch, onEnd);
        c.frozen = true;
        String failed = c.session.restore(setup);
        if (failed != null) {
            c.session.close(() -> { }, () -> c.released.complete(null));
            throw new IOException(runtime.name() + ": the connection handed over by the previous jvhost cannot be "
                    + "restored (" + failed + " failed)");
        }
        c.adoptedFd = fd;
        return c;
    }

    private static Connection create(DeviceRuntime runtime, ControlLoop loop, String where, AFUNIXSocketChannel ch,
            Consumer<Connection> onEnd) throws IOException {
        Connection c = new Connection(runtime, loop, where, onEnd);
        Endpoint endpoint;
        try {
            endpoint = new Endpoint(ch);
        } catch (IOException | RuntimeException e) {
            try {
                ch.close();
            } catch (IOException ignored) {
                // nothing was set up on it
            }
            throw new IOException(e.getMessage(), e);
        }
        try {
            c.session = new BackendSession(runtime, endpoint, loop::execute, c::onAnswered);
        } catch (RuntimeException e) {
            endpoint.close();
            throw new IOException(e.getMessage(), e);
        }
        c.socketFd = endpoint.fd();
        return c;
    }

    private void register() throws NativeException {
        token = loop.register(socketFd, LinuxSys.EPOLLIN, this::onEvent);
        watched = LinuxSys.EPOLLIN;
    }

    // ---- hot upgrade (Handover, Takeover) ------------------------------------------------------

    /** The session, for a hot upgrade's image of it. */
    BackendSession session() {
        return session;
    }

    /** The socket's fd, to hand over (it stays junixsocket's here). */
    int socketFd() {
        return socketFd;
    }

    /**
     * A hot upgrade's first phase: stops watching the socket (what the front-end sends meanwhile waits in
     * it), so nothing in the session changes but where its rings stand. Only {@link
     * BackendSession#betweenRequests()}.
     */
    void freeze() {
        frozen = true;
        loop.unregister(token);
        token = -1;
        if (stallCheck != null) {
            stallCheck.cancel();
            stallCheck = null;
        }
    }

    /** The second phase: pauses the rings of the {@linkplain #freeze frozen} session; {@code done} runs on the loop then. */
    void pause(Runnable done) {
        session.handover().pause(done);
    }

    /** The upgrade was abandoned: paused rings start again and the socket is read again. */
    void resume() {
        if (!frozen || ended) {
            return;
        }
        frozen = false;
        session.handover().resume();
        try {
            register();
        } catch (NativeException e) {
            LOG.error("{}: cannot watch the connection on {} again: {}", runtime.name(), where, e.getMessage());
            end();
            return;
        }
        watch();
    }

    /**
     * Serves a connection {@linkplain #adopt taken over}: {@code requests} (the rest of the previous
     * process's image of it) first ({@link BackendSession#replay}), then the socket. {@code running}
     * completes once they are served, or fails if the connection ends first.
     */
    void start(java.util.List<org.jvhost.engine.transport.Message> requests, CompletableFuture<Void> running) {
        restored = running;
        if (ended) {
            running.completeExceptionally(new IOException(runtime.name() + ": the connection on " + where + " ended"));
            requests.forEach(org.jvhost.engine.transport.Message::closeFds);
            return;
        }
        frozen = false;
        try {
            register();
        } catch (NativeException e) {
            requests.forEach(org.jvhost.engine.transport.Message::closeFds);
            LOG.error("{}: cannot watch the connection taken over on {}: {}", runtime.name(), where, e.getMessage());
            end();
            return;
        }
        session.replay(requests);
        replayStarted = System.nanoTime();
        loop.execute(() -> onEvent(LinuxSys.EPOLLIN));
    }

    /** Completes on the loop once the session has released every fd and mapping it brought. */
    CompletableFuture<Void> released() {
        return released;
    }

    private void onEvent(int events) {
        if (ended || frozen) {
            return;
        }
        boolean gone = (events & (LinuxSys.EPOLLHUP | LinuxSys.EPOLLERR)) != 0;
        if (session.awaitingWorkers()) {
            // nothing is watched now, so only a hang-up or error reports: the front-end left while its
            // request waited for a worker; the session releases everything once the workers are done
            if (gone) {
                LOG.info("{}: the front-end on {} left while a request waited for a worker", runtime.name(), where);
                end();
            }
            return;
        }
        if (session.replyUnsent()) {
            if (gone || ((events & LinuxSys.EPOLLOUT) != 0 && !session.onWritable())) {
                end();
                return;
            }
        } else if (!session.onReadable()) {
            end();
            return;
        }
        watch();
    }

    /** A request that waited for its workers was answered: read again, or end a broken connection. */
    private void onAnswered() {
        if (ended) {
            return;
        }
        if (session.isBroken()) {
            end();
        } else {
            watch();
        }
    }

    /**
     * Watches the socket for what the session can take now: nothing while a request waits for
     * workers, room to send while a reply is unsent, else requests. Arms the stall deadline.
     */
    private void watch() {
        int want = session.awaitingWorkers() ? 0 : session.replyUnsent() ? LinuxSys.EPOLLOUT : LinuxSys.EPOLLIN;
        if (want != watched) {
            try {
                loop.modify(token, want);
                watched = want;
            } catch (NativeException e) {
                LOG.error("{}: cannot watch the connection on {}: {}", runtime.name(), where, e.getMessage());
                end();
                return;
            }
        }
        if (stalled() && stallCheck == null) {
            long armedAt = System.nanoTime();
            stallCheck = loop.schedule(STALL_MS, () -> checkStall(armedAt));
        }
        if (session.replayPending() && !session.awaitingWorkers()) {
            // replayed requests do not come from the socket, so no readiness event brings them
            loop.execute(() -> onEvent(LinuxSys.EPOLLIN));
        } else if (replayStarted != 0 && !session.replayPending() && !session.awaitingWorkers()) {
            long now = System.nanoTime();
            long us = (now - replayStarted) / 1000;
            long ringStart = session.handover().lastRingStart();
            long since = ringStart == 0 ? 0 : (now - ringStart) / 1000;
            replayStarted = 0;
            // the last ring ran from its start on its worker: the line itself may come later (this thread waits
            // for a CPU while the worker serves the first frames), so it says how much
            if (runtime.name().equals(Rehearsal.NAME)) {
                LOG.debug("{}: the connection taken over on {} runs again ({} us to restore it; its last ring "
                        + "started {} us before)", runtime.name(), where, us, since);
            } else {
                LOG.info("{}: the connection taken over on {} runs again ({} us to restore it; its last ring "
                        + "started {} us before)", runtime.name(), where, us, since);
            }
            restored.complete(null);
        }
    }

    private boolean stalled() {
        return session.inMessage() || session.replyUnsent();
    }

    /**
     * The stall deadline: fires {@link #STALL_MS} after a read left a message incomplete or a reply
     * found the socket full. If the connection is still stuck in the message that began (or on the
     * reply made) no later than then, it is cut. A connection that got past it and stalled again later
     * gets a fresh check instead.
     */
    private void checkStall(long armedAt) {
        stallCheck = null;
        if (ended || !stalled()) {
            return;
        }
        long since = session.replyUnsent() ? session.replyUnsentSinceNanos() : session.messageStartedNanos();
        if (since - armedAt <= 0) {
            LOG.error("{}: the front-end on {} {} within {} ms; closing the connection", runtime.name(), where,
                    session.replyUnsent() ? "did not read its reply" : "sent part of a message and not the rest",
                    STALL_MS);
            end();
        } else {
            long left = STALL_MS - (System.nanoTime() - since) / 1_000_000L;
            stallCheck = loop.schedule(Math.max(0, left), () -> checkStall(since));
        }
    }

    /**
     * Ends the connection: nothing more is read; the socket closes once the rings have stopped, or
     * {@link #CLOSE_GRACE_MS} from now if a worker has not confirmed by then
     * ({@link BackendSession#close}); the session releases its fds and mappings as its workers confirm
     * ({@link #released()}). Idempotent.
     */
    void end() {
        if (ended) {
            return;
        }
        ended = true;
        restored.completeExceptionally(new IOException(runtime.name() + ": the connection on " + where + " ended"));
        loop.unregister(token);
        if (stallCheck != null) {
            stallCheck.cancel();
            stallCheck = null;
        }
        session.close(this::socketClosed, () -> released.complete(null));
        if (!session.socketClosed()) {
            closeDeadline = loop.schedule(CLOSE_GRACE_MS, session::closeSocket);
        }
        onEnd.accept(this);
    }

    private void socketClosed() {
        LinuxSys.closeQuietly(adoptedFd); // the socket itself is closed now: no other thread has its number
        adoptedFd = -1;
        if (closeDeadline != null) {
            closeDeadline.cancel();
            closeDeadline = null;
        }
    }
}
