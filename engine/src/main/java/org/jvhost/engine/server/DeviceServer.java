package org.jvhost.engine.server;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.jvhost.engine.device.DeviceRuntime;
import org.jvhost.engine.session.SessionImage;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.spi.DeviceState;
import org.newsclub.net.unix.AFUNIXServerSocketChannel;
import org.newsclub.net.unix.AFUNIXSocketChannel;
import org.newsclub.net.unix.FileDescriptorCast;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Meets one device's front-ends and serves one connection at a time, on a shared {@link ControlLoop}:
 * the listening socket, the connection and the reconnect timer are events of that loop, not threads.
 * All state below is touched on the loop thread only, except the fields read by {@link Host#status}.
 *
 * <p>LISTEN: a connection arriving while another is served waits up to {@link #HANDOFF_GRACE_MS} for
 * that one to end (a front-end reconnecting at once), and is otherwise closed with a WARN: a second
 * front-end must not hang in the backlog. CONNECT: jvhost connects, and again after each session, with a
 * {@link Connector}. The listening socket, with its allow-list and its pauses when accept fails, is a
 * {@link Listener}.
 *
 * <p>The connection itself is a {@link Connection}: a new front-end is served only after the last one's
 * session has released every fd and mapping (its workers may take a while to let go).
 */
final class DeviceServer {
    private static final Logger LOG = LoggerFactory.getLogger(DeviceServer.class);
    private static final long HANDOFF_GRACE_MS = 500;

    private final DeviceRuntime runtime;
    private final ControlLoop loop;
    /** The socket path (listened on or connected to); null for an inherited listening socket. */
    private final Path path;
    private final Host.Mode mode;
    private final SocketAccess access;
    /** The listening socket; null in CONNECT mode. */
    private final Listener listener;
    /** The socket file created for this device; null if it listens on an inherited fd or connects. */
    private final SocketFile socketFile;
    private final String where;
    private final AtomicLong sessions = new AtomicLong();
    private volatile Connection current;

    /** Completes when the last session has released its fds and mappings; until then none is served. */
    private CompletableFuture<Void> released = CompletableFuture.completedFuture(null);
    private AFUNIXSocketChannel waiting;
    private ControlLoop.Timer waitingTimer;
    /** Connects to the front-end; null in LISTEN mode. */
    private final Connector connector;
    private boolean closed;
    /** Frozen for a hot upgrade: nothing accepted or connected, nothing read from the connection. */
    private boolean frozen;
    /** The connection whose setup went in the first phase of a two-phase handover; null otherwise. */
    private Connection frozenWith;
    /** Taken over from the previous process and not started yet ({@link #startAdopted}). */
    private IncomingDevice adopted;
    /** Completes once what was taken over serves again: the connection's rings run, or there was none. */
    private final CompletableFuture<Void> adoptedRunning = new CompletableFuture<>();

    private DeviceServer(DeviceRuntime runtime, ControlLoop loop, Path path, Host.Mode mode, SocketAccess access,
            AFUNIXServerSocketChannel server, SocketFile socketFile, String where) {
        this.runtime = runtime;
        this.loop = loop;
        this.path = path;
        this.mode = mode;
        this.access = access;
        this.listener = server == null ? null : new Listener(runtime, loop, server, access, where, this::onAdmitted);
        this.connector = mode == Host.Mode.CONNECT ? new Connector(runtime, loop, path, access, this::serveNew) : null;
        this.socketFile = socketFile;
        this.where = where;
    }

    /** Listens on a new socket file {@code path} with {@code access}'s mode and group ({@link SocketFile#listen}). */
    static DeviceServer listen(DeviceRuntime runtime, ControlLoop loop, Path path, SocketAccess access)
            throws IOException {
        SocketFile file = SocketFile.listen(path, access);
        DeviceServer s = new DeviceServer(runtime, loop, path, Host.Mode.LISTEN, access, file.channel(), file,
                path.toString());
        s.startListening();
        return s;
    }

    /**
     * Serves front-ends arriving on an inherited listening socket {@code fd} (spec "Backend program
     * conventions", {@code --fd}). The socket file, if any, belongs to whoever made the socket: it is
     * neither re-moded nor deleted.
     */
    static DeviceServer inherit(DeviceRuntime runtime, ControlLoop loop, int fd, SocketAccess access)
            throws IOException {
        AFUNIXServerSocketChannel server;
        try {
            server = FileDescriptorCast.unsafeUsing(fd).as(AFUNIXServerSocketChannel.class);
        } catch (IOException | RuntimeException e) {
            throw new IOException("fd " + fd + " is not a listening Unix socket: " + e.getMessage(), e);
        }
        server.setDeleteOnClose(false);
        DeviceServer s = new DeviceServer(runtime, loop, null, Host.Mode.LISTEN, access, server, null, "fd " + fd);
        s.startListening();
        return s;
    }

    /** Connects to the front-end listening on {@code path}, in the background, again after every session. */
    static DeviceServer connect(DeviceRuntime runtime, ControlLoop loop, Path path, SocketAccess access) {
        DeviceServer s = new DeviceServer(runtime, loop, path, Host.Mode.CONNECT, access, null, null, path.toString());
        s.connector.connectNow();
        return s;
    }

    /**
     * Hot upgrade: serves what the previous process handed over for this device ({@code in}), once
     * {@link #startAdopted} runs: its listening socket (on {@code path}, whose file this server then
     * owns; none in CONNECT mode) and its connection. A connection that came in a two-phase handover's
     * first phase is set up here already (its rings still run in the previous process); otherwise it is
     * set up at the start. The device's saved state, if it came already, is restored here, so a device
     * that cannot read it fails the takeover before it is acknowledged ({@link #finishAdoption} otherwise).
     *
     * @throws IOException if the listening fd is not a listening Unix socket, the connection cannot be set
     *                     up, or the device refuses its state
     */
    static DeviceServer adopt(DeviceRuntime runtime, ControlLoop loop, Path path, Host.Mode mode,
            SocketAccess access, IncomingDevice in) throws IOException {
        in.closeResources(); // the provider's create has had them
        AFUNIXServerSocketChannel server = null;
        SocketFile file = null;
        if (in.listenerFd() >= 0) {
            server = FileDescriptorCast.unsafeUsing(in.takeListener()).as(AFUNIXServerSocketChannel.class);
            server.setDeleteOnClose(false);
            server.configureBlocking(false);
            file = path == null ? null : SocketFile.adopt(path, server);
        }
        String where = path != null ? path.toString() : "an inherited socket";
        DeviceServer s = new DeviceServer(runtime, loop, path, mode, access, server, file, where);
        s.adopted = in;
        if (in.setUpEarly()) {
            s.adoptConnection(in);
        }
        in.restoreState(runtime.device());
        return s;
    }

    /** Sets up the connection {@code in} brings, on the loop, without reading it ({@link Connection#adopt}). */
    private void adoptConnection(IncomingDevice in) throws IOException {
        IOException[] failure = {null};
        try {
            loop.call(() -> {
                try {
                    takeConnection(in);
                } catch (IOException e) {
                    failure[0] = e;
                }
            }, DeviceRuntime.WORKER_TIMEOUT_MS);
        } catch (java.util.concurrent.TimeoutException e) {
            throw new IOException(runtime.name() + ": the connection taken over was not set up in time", e);
        }
        if (failure[0] != null) {
            throw failure[0];
        }
    }

    /** The second phase of a two-phase takeover has come: the device takes its state. Not on the loop. */
    void finishAdoption() throws IOException {
        if (adopted != null) {
            adopted.restoreState(runtime.device());
        }
    }

    /** The connection {@code in} brings becomes {@link #current}, set up by its early requests. Loop only. */
    private void takeConnection(IncomingDevice in) throws IOException {
        int fd = in.takeConnection();
        if (fd < 0) {
            return;
        }
        try {
            AFUNIXSocketChannel ch = FileDescriptorCast.unsafeUsing(fd).as(AFUNIXSocketChannel.class);
            current = Connection.adopt(runtime, loop, where, ch, fd, in.takeSetup(), this::ended);
        } catch (IOException e) {
            LinuxSys.closeQuietly(fd); // junixsocket does not close a cast fd
            throw e;
        }
        sessions.incrementAndGet();
    }

    /**
     * Completes once what {@link #adopt} took over serves again after {@link #startAdopted}: the connection's
     * rings run (or it ended), or there was none.
     */
    CompletableFuture<Void> adoptedRunning() {
        return adoptedRunning;
    }

    /** Starts serving what {@link #adopt} took over: watch the listener, start the connection. Loop only. */
    void startAdopted() {
        IncomingDevice in = adopted;
        adopted = null;
        if (in == null || closed) {
            adoptedRunning.complete(null);
            return;
        }
        if (listener != null) {
            try {
                listener.watch();
            } catch (IOException e) {
                LOG.error("{}: cannot watch the listening socket taken over on {}: {}", runtime.name(), where,
                        e.getMessage());
            }
        }
        if (current == null) {
            try {
                takeConnection(in);
            } catch (IOException e) {
                LOG.error("{}: {}", runtime.name(), e.getMessage());
            }
        }
        if (current != null && in.ringsLost()) {
            LOG.warn("{}: the previous jvhost ended the connection on {} before it paused it; closing it here too",
                    runtime.name(), where);
            current.end();
        } else if (current != null) {
            current.start(in.takeReplay(), adoptedRunning);
            LOG.debug("{}: took over the connection on {} from the previous jvhost", runtime.name(), where);
        } else if (connector != null) {
            connector.connectNow();
        }
        if (current == null || in.ringsLost()) {
            adoptedRunning.complete(null);
        }
        in.closeReplay();
    }

    /**
     * Hot upgrade, first phase, on the loop: stops accepting (or connecting) and freezes the connection at
     * a request boundary: its rings run on, nothing more is read from it. {@code out} completes with what
     * to hand over before the rings pause, or fails naming why not (a migration runs, or the connection
     * stays inside a request for {@code busyMs}).
     */
    void freezeInLoop(CompletableFuture<Handover.Frozen> out, long busyMs) {
        if (closed) {
            out.complete(null);
            return;
        }
        frozen = true;
        if (listener != null) {
            listener.unwatch();
        }
        if (connector != null) {
            connector.stop();
        }
        freezeConnection(out, System.nanoTime() + busyMs * 1_000_000L);
    }

    private void freezeConnection(CompletableFuture<Handover.Frozen> out, long deadline) {
        Connection c = current;
        int listenerFd;
        try {
            listenerFd = listener == null ? -1 : listener.fd();
        } catch (IOException e) {
            out.completeExceptionally(new IOException(runtime.name() + ": " + e.getMessage(), e));
            return;
        }
        if (c == null) {
            out.complete(new Handover.Frozen(runtime, listenerFd, null, null, null));
            return;
        }
        if (c.session().handover().logging()) {
            out.completeExceptionally(new IOException(runtime.name() + ": a live migration is running (dirty-page "
                    + "logging); upgrade after it ends"));
            return;
        }
        if (!c.session().betweenRequests()) {
            if (System.nanoTime() - deadline > 0) {
                out.completeExceptionally(new IOException(runtime.name() + ": the front-end stayed inside a "
                        + "request; not paused"));
                return;
            }
            loop.schedule(1, () -> freezeConnection(out, deadline));
            return;
        }
        c.freeze();
        DeviceState resources = c.session().handover().notInImage() == null ? Handover.saveResources(runtime) : null;
        frozenWith = resources != null ? c : null;
        out.complete(new Handover.Frozen(runtime, listenerFd, c,
                resources != null ? c.session().handover().image(SessionImage.Part.SETUP) : null, resources));
    }

    /**
     * Hot upgrade, second phase, on the loop: pauses the rings of the frozen connection; {@code out} completes
     * with what to hand over then (the rest of its image and the device's state), or null if there is
     * no connection (any more).
     */
    void pauseInLoop(CompletableFuture<Handover.Outgoing> out) {
        Connection c = current;
        if (closed || !frozen || c == null) {
            out.complete(null);
            return;
        }
        boolean early = c == frozenWith;
        c.pause(() -> out.complete(new Handover.Outgoing(runtime, c,
                c.session().handover().image(early ? SessionImage.Part.RINGS : SessionImage.Part.ALL),
                Handover.saveState(runtime, c.session().handover().notInImage()), early)));
    }

    /** The upgrade was abandoned: accept, connect and serve again as before. Loop only. */
    void resumeInLoop() {
        if (!frozen || closed) {
            return;
        }
        frozen = false;
        frozenWith = null;
        if (current != null) {
            current.resume();
        }
        if (listener != null) {
            listener.watchOrRetry();
        } else if (connector != null && current == null) {
            connector.connectNow();
        }
    }

    private void startListening() throws IOException {
        try {
            loop.call(() -> {
                try {
                    listener.watch();
                } catch (IOException e) {
                    throw new IllegalStateException(e.getMessage(), e);
                }
            }, DeviceRuntime.WORKER_TIMEOUT_MS);
        } catch (RuntimeException | java.util.concurrent.TimeoutException e) {
            listener.close();
            deleteOwnFile();
            throw new IOException(where + ": cannot watch the listening socket: " + e.getMessage(), e);
        }
    }

    // ---- loop thread from here on --------------------------------------------------------------

    /** A front-end the listener let in: served now, or kept waiting for the current session to end. */
    private void onAdmitted(AFUNIXSocketChannel ch) {
        if (current == null && released.isDone()) {
            serveNew(ch);
        } else if (waiting == null) {
            waiting = ch; // served if the current session ends within the grace period
            waitingTimer = loop.schedule(HANDOFF_GRACE_MS, this::turnAwayWaiting);
        } else {
            LOG.warn("{}: a second front-end connected on {} while one is served; closing it",
                    runtime.name(), where);
            closeQuietly(ch);
        }
    }

    private void turnAwayWaiting() {
        if (waiting != null) {
            LOG.warn("{}: a second front-end connected on {} while one is served; closing it",
                    runtime.name(), where);
            closeQuietly(waiting);
            waiting = null;
        }
        waitingTimer = null;
    }

    /** A front-end that connected to this process (not one taken over from the previous jvhost). */
    private void serveNew(AFUNIXSocketChannel ch) {
        serve(ch);
        if (current != null) {
            LOG.info("{}: front-end connected on {}", runtime.name(), where);
        }
    }

    private void serve(AFUNIXSocketChannel ch) {
        Connection c;
        try {
            c = Connection.open(runtime, loop, where, ch, this::ended);
        } catch (IOException e) {
            LOG.error("{}: cannot set up the connection on {}: {}", runtime.name(), where, e.getMessage());
            afterSession();
            return;
        }
        current = c;
        sessions.incrementAndGet();
    }

    /** The connection ended; the next is served once the session has released everything. */
    private void ended(Connection c) {
        current = null;
        released = c.released();
        released.thenRun(this::afterSession);
    }

    private void endSession() {
        Connection c = current;
        if (c != null) {
            c.end();
        }
    }

    /** What comes after a session: the front-end that waited, or (CONNECT) the next connection. */
    private void afterSession() {
        if (closed || frozen) {
            return;
        }
        if (waiting != null) {
            AFUNIXSocketChannel next = waiting;
            waiting = null;
            waitingTimer.cancel();
            waitingTimer = null;
            serveNew(next);
        } else if (connector != null) {
            connector.connectSoon();
        }
    }

    /**
     * Stops the device's sockets, on the loop thread: the session stops its rings through the normal
     * stop path (each ring's worker finishes the kick it is handling first) and resets the device; the
     * listening socket closes and the socket file this server created is removed.
     */
    CompletableFuture<Void> closeInLoop() {
        if (closed) {
            return released;
        }
        closed = true;
        if (connector != null) {
            connector.close();
        }
        if (waiting != null) {
            waitingTimer.cancel();
            closeQuietly(waiting);
            waiting = null;
        }
        endSession();
        if (listener != null) {
            listener.close();
            deleteOwnFile();
        }
        return released;
    }

    /**
     * {@link #closeInLoop()} from any thread, waiting until the session has released everything (for
     * removing one device while the others keep running).
     *
     * @throws java.util.concurrent.TimeoutException if that took longer than {@link DeviceRuntime#WORKER_TIMEOUT_MS}
     *                                               (a device callback hangs)
     */
    void close() throws java.util.concurrent.TimeoutException {
        CompletableFuture<Void> done = new CompletableFuture<>();
        loop.execute(() -> closeInLoop().whenComplete((v, t) -> done.complete(null)));
        try {
            done.get(DeviceRuntime.WORKER_TIMEOUT_MS, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException e) {
            throw new IllegalStateException(e.getCause());
        }
    }

    private void deleteOwnFile() {
        if (socketFile != null) {
            socketFile.delete();
        }
    }

    ControlLoop loop() {
        return loop;
    }

    long sessions() {
        return sessions.get();
    }

    boolean connected() {
        return current != null;
    }

    DeviceRuntime runtime() {
        return runtime;
    }

    private static void closeQuietly(java.nio.channels.Channel c) {
        if (c != null) {
            try {
                c.close();
            } catch (IOException ignored) {
                // nothing to release
            }
        }
    }
}
