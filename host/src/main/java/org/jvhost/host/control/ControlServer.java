package org.jvhost.host.control;

import java.io.IOException;
import java.nio.channels.ClosedSelectorException;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;
import org.jvhost.engine.server.SocketAccess;
import org.jvhost.engine.server.SocketFile;
import org.newsclub.net.unix.AFUNIXSelectorProvider;
import org.newsclub.net.unix.AFUNIXServerSocketChannel;
import org.newsclub.net.unix.AFUNIXSocketChannel;
import org.newsclub.net.unix.AFUNIXSocketCredentials;
import org.newsclub.net.unix.FileDescriptorCast;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The control socket: a Unix stream socket where each request is one line of text and each response
 * one line (a JSON object, made by the {@link Handler}). All connections share one thread,
 * {@code jvhost-control}, multiplexed with a selector, so idle clients cost a file descriptor and a
 * buffer, not a thread; requests are served one at a time, in arrival order.
 *
 * <p>Access: the socket file is made owner-only (0600) right after bind, and, since a client could
 * connect in the instant before, each connection's peer credentials (SO_PEERCRED) must also show the
 * socket's owner or root, or it is closed at once.
 *
 * <p>Limits, so that no client can take the server down: {@value #MAX_CONNECTIONS} connections, and
 * per connection those of {@link ControlConnection} (request length, unread responses). A failing
 * accept (EMFILE when the process is out of file descriptors) pauses accepting for
 * {@value #ACCEPT_PAUSE_MS} ms; it never ends the server.
 */
public final class ControlServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ControlServer.class);
    /** Connections beyond this are closed at once: a bound on the fds and buffers clients can pin. */
    static final int MAX_CONNECTIONS = 64;
    private static final long ACCEPT_PAUSE_MS = 1000;
    private static final long JOIN_MS = 3000;

    /** Answers one request line with one response line (without the newline). Never throws. */
    @FunctionalInterface
    public interface Handler {
        String handle(String request);
    }

    private final Path path;
    private final Handler handler;
    private final AFUNIXServerSocketChannel server;
    private final Selector selector;
    private final long ownerUid;
    private final SocketFile socketFile;
    private final Thread thread;
    private volatile boolean closed;
    private int connections;
    private SelectionKey acceptKey;
    /** {@link System#nanoTime()} when accepting resumes after a failure, or 0 when not paused. */
    private long acceptPausedUntil;

    private ControlServer(Path path, Handler handler, SocketFile socketFile) throws IOException {
        this.path = path;
        this.handler = handler;
        this.socketFile = socketFile;
        AFUNIXServerSocketChannel ch = socketFile.channel();
        try {
            this.ownerUid = ((Number) Files.getAttribute(path, "unix:uid", LinkOption.NOFOLLOW_LINKS)).longValue();
            ch.configureBlocking(false);
            this.selector = AFUNIXSelectorProvider.provider().openSelector();
            this.acceptKey = ch.register(selector, SelectionKey.OP_ACCEPT);
        } catch (IOException | RuntimeException e) {
            ch.close();
            socketFile.delete();
            throw new IOException("control socket " + path + ": " + e.getMessage(), e);
        }
        this.server = ch;
        this.thread = new Thread(this::loop, "jvhost-control");
        this.thread.setDaemon(true);
    }

    /**
     * Listens on {@code path} and serves requests with {@code handler} until {@link #close()}.
     *
     * @throws IOException naming the path if it cannot listen there, or if another process does
     */
    public static ControlServer start(Path path, Handler handler) throws IOException {
        Path p = path.toAbsolutePath();
        SocketFile file;
        try {
            // owner-only from birth, and never a chmod through a symlink (SocketFile); a stale file of a
            // crashed run is replaced, a live socket or any other file is not
            file = SocketFile.listen(p, SocketAccess.DEFAULT);
        } catch (IOException e) {
            throw new IOException("control socket: " + e.getMessage(), e);
        }
        ControlServer s = new ControlServer(p, Objects.requireNonNull(handler), file);
        s.thread.start();
        LOG.info("control socket listening on {} (owner-only)", s.path);
        return s;
    }

    /**
     * Serves requests on {@code listeningFd}, the control socket on {@code path} that the previous
     * jvhost handed over (hot upgrade); the socket file is this server's from now on.
     */
    public static ControlServer adopt(Path path, int listeningFd, Handler handler) throws IOException {
        Path p = path.toAbsolutePath();
        AFUNIXServerSocketChannel ch = FileDescriptorCast.unsafeUsing(listeningFd).as(AFUNIXServerSocketChannel.class);
        ch.setDeleteOnClose(false);
        ControlServer s = new ControlServer(p, Objects.requireNonNull(handler), SocketFile.adopt(p, ch));
        s.thread.start();
        LOG.info("control socket on {} taken over from the previous jvhost", s.path);
        return s;
    }

    /** The listening socket's fd, for a hot upgrade to hand over (it stays this server's). */
    public int listenerFd() throws IOException {
        return FileDescriptorCast.using(server.getFileDescriptor()).as(Integer.class);
    }

    public Path path() {
        return path;
    }

    private void loop() {
        try {
            while (!closed) {
                // junixsocket's select(0) polls without blocking (not the JDK's "wait for ever"): it spun this
                // thread at a CPU's worth for the whole life of every jvhost; select() blocks
                if (acceptPausedUntil == 0) {
                    selector.select();
                } else {
                    selector.select(pauseLeftMillis());
                }
                resumeAccepting();
                for (SelectionKey key : selector.selectedKeys()) {
                    if (!key.isValid()) {
                        // junixsocket's selector cancels a client's key when the client hangs up and
                        // reports it once more, invalid: the only sign of the hang-up we get, so close here
                        if (key.attachment() instanceof ControlConnection c) {
                            drop(key, c);
                        }
                        continue;
                    }
                    if (key.isAcceptable()) {
                        accept();
                    } else {
                        serve(key);
                    }
                }
                selector.selectedKeys().clear();
            }
        } catch (IOException | ClosedSelectorException e) {
            if (!closed) {
                LOG.error("control socket {}: the selector failed, control requests are no longer served: {}",
                        path, e.getMessage());
            }
        }
    }

    private void accept() {
        AFUNIXSocketChannel ch;
        try {
            ch = server.accept();
        } catch (IOException e) {
            // EMFILE/ENFILE: the connection stays in the backlog and would wake the selector at once again
            LOG.warn("control socket {}: cannot accept a connection ({}); trying again in {} ms", path,
                    e.getMessage(), ACCEPT_PAUSE_MS);
            acceptKey.interestOps(0);
            acceptPausedUntil = System.nanoTime() + ACCEPT_PAUSE_MS * 1_000_000;
            return;
        }
        if (ch == null) {
            return;
        }
        try {
            AFUNIXSocketCredentials peer = ch.getPeerCredentials();
            long uid = peer == null ? -1 : peer.getUid();
            if (uid != ownerUid && uid != 0) {
                LOG.warn("control socket {}: refused a client with uid {} (pid {}): only uid {} and root may connect",
                        path, uid, peer == null ? -1 : peer.getPid(), ownerUid);
                ch.close();
                return;
            }
            if (connections >= MAX_CONNECTIONS) {
                LOG.warn("control socket {}: refused a client: {} connections are open already", path, connections);
                ch.close();
                return;
            }
            ch.configureBlocking(false);
            ch.register(selector, SelectionKey.OP_READ, new ControlConnection(ch));
            connections++;
        } catch (IOException e) {
            LOG.debug("control client dropped while being accepted: {}", e.getMessage());
            closeQuietly(ch);
        }
    }

    private long pauseLeftMillis() {
        return Math.max(1, (acceptPausedUntil - System.nanoTime()) / 1_000_000 + 1);
    }

    private void resumeAccepting() {
        if (acceptPausedUntil != 0 && System.nanoTime() - acceptPausedUntil >= 0) {
            acceptPausedUntil = 0;
            acceptKey.interestOps(SelectionKey.OP_ACCEPT);
        }
    }

    private void serve(SelectionKey key) {
        ControlConnection c = (ControlConnection) key.attachment();
        try {
            int ops = c.serve(key.isReadable(), this::answer);
            if (ops >= 0) {
                key.interestOps(ops);
                return;
            }
            if (c.overflowed()) {
                LOG.warn("control socket {}: dropped a client that sent requests without reading {} bytes of answers",
                        path, c.pendingBytes());
            }
        } catch (IOException e) {
            LOG.debug("control client dropped: {}", e.getMessage());
        }
        drop(key, c);
    }

    private String answer(String line) {
        try {
            return handler.handle(line);
        } catch (RuntimeException | Error e) {
            // an Error of plugin code reached through the handler must not end the control thread
            LOG.error("control request '{}' failed", line, e);
            return Json.write(Map.of("ok", false, "error", "internal error: " + e));
        }
    }

    private void drop(SelectionKey key, ControlConnection c) {
        key.cancel();
        if (c.dropped) {
            return;
        }
        c.dropped = true;
        connections--;
        closeQuietly(c.channel);
    }

    private static void closeQuietly(AFUNIXSocketChannel ch) {
        try {
            ch.close();
        } catch (IOException ignored) {
            // nothing left to release
        }
    }

    /** Stops serving, closes every client and removes the socket file (if it is still the one we bound). */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        selector.wakeup();
        try {
            thread.join(JOIN_MS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        for (SelectionKey key : selector.keys()) {
            try {
                key.channel().close();
            } catch (IOException ignored) {
                // closing anyway
            }
        }
        try {
            selector.close();
            server.close();
        } catch (IOException e) {
            LOG.warn("control socket {}: {}", path, e.getMessage());
        }
        removeOwnSocketFile();
    }

    private void removeOwnSocketFile() {
        socketFile.delete();
    }
}
