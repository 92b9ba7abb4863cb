package org.jvhost.engine.server;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLong;
import org.jvhost.engine.event.DeviceRuntime;
import org.jvhost.engine.session.BackendSession;
import org.jvhost.engine.transport.Endpoint;
import org.newsclub.net.unix.AFUNIXServerSocket;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Meets one device's front-ends and serves one connection at a time, each on a control thread
 * {@code jvhost-ctl-<device>} running a {@link BackendSession}.
 *
 * <p>LISTEN: the thread {@code jvhost-accept-<device>} accepts. A connection arriving while another is
 * served waits up to {@link #HANDOFF_GRACE_MS} for that one to finish (a front-end reconnecting at
 * once), and is otherwise closed with a WARN: a second front-end must not hang in the backlog.
 * CONNECT: the control thread itself connects, and reconnects with back-off after each session.
 */
final class DeviceServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(DeviceServer.class);
    private static final long BACKOFF_MIN_MS = 100;
    private static final long BACKOFF_MAX_MS = 2000;
    private static final long JOIN_MS = 3000;
    private static final long HANDOFF_GRACE_MS = 500;

    private final DeviceRuntime runtime;
    private final Path path;
    private final AFUNIXServerSocket server;
    private final Thread loop;
    private final AtomicLong sessions = new AtomicLong();
    private volatile boolean closed;
    private volatile BackendSession current;
    private volatile Thread sessionThread;
    private volatile AFUNIXSocket connecting;

    DeviceServer(DeviceRuntime runtime, Path path, Host.Mode mode) throws IOException {
        this.runtime = runtime;
        this.path = path;
        this.server = mode == Host.Mode.LISTEN ? bind(path) : null;
        this.loop = mode == Host.Mode.LISTEN
                ? new Thread(this::acceptLoop, "jvhost-accept-" + runtime.name())
                : new Thread(this::connectLoop, "jvhost-ctl-" + runtime.name());
        this.loop.setDaemon(true);
        this.loop.start();
    }

    /**
     * Binds the socket path. An existing file is replaced only if nothing answers on it (a stale socket
     * left by a crashed daemon); a live one means another back-end serves this path.
     */
    private static AFUNIXServerSocket bind(Path path) throws IOException {
        AFUNIXSocketAddress addr = AFUNIXSocketAddress.of(path);
        if (Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
            if (answers(addr)) {
                throw new IOException(path + ": another process is listening on this socket");
            }
            LOG.info("{}: replacing stale socket file", path);
            Files.delete(path);
        }
        try {
            AFUNIXServerSocket s = AFUNIXServerSocket.newInstance();
            s.setDeleteOnClose(true);
            s.bind(addr);
            return s;
        } catch (IOException e) {
            throw new IOException(path + ": cannot listen: " + e.getMessage(), e);
        }
    }

    private static boolean answers(AFUNIXSocketAddress addr) {
        try (AFUNIXSocket probe = AFUNIXSocket.connectTo(addr)) {
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private void acceptLoop() {
        while (!closed) {
            AFUNIXSocket s;
            try {
                s = server.accept();
            } catch (IOException e) {
                if (!closed) {
                    LOG.error("{}: accept on {} failed, the device stops listening: {}", runtime.name(), path,
                            e.getMessage());
                }
                return;
            }
            if (closed) {
                closeQuietly(s); // the wake-up connection of close(), or a late front-end
                return;
            }
            if (!awaitIdle()) {
                LOG.warn("{}: a second front-end connected on {} while one is served; closing it",
                        runtime.name(), path);
                closeQuietly(s);
                continue;
            }
            Thread t = new Thread(() -> serve(s), "jvhost-ctl-" + runtime.name());
            t.setDaemon(true);
            sessionThread = t;
            t.start();
        }
    }

    private boolean awaitIdle() {
        long deadline = System.nanoTime() + HANDOFF_GRACE_MS * 1_000_000L;
        Thread t;
        while ((t = sessionThread) != null && t.isAlive() && System.nanoTime() < deadline) {
            sleep(10);
        }
        t = sessionThread;
        return t == null || !t.isAlive();
    }

    private void connectLoop() {
        long backoff = BACKOFF_MIN_MS;
        while (!closed) {
            AFUNIXSocket s = null;
            try {
                s = AFUNIXSocket.newInstance();
                connecting = s;
                if (closed) {
                    break;
                }
                s.connect(AFUNIXSocketAddress.of(path));
            } catch (IOException e) {
                closeQuietly(s);
                LOG.debug("{}: connect to {} failed: {}", runtime.name(), path, e.getMessage());
                sleep(backoff);
                backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
                continue;
            } finally {
                connecting = null;
            }
            backoff = BACKOFF_MIN_MS;
            serve(s);
            sleep(BACKOFF_MIN_MS);
        }
    }

    /** Serves one connection to its end. */
    private void serve(AFUNIXSocket s) {
        try {
            BackendSession session = new BackendSession(runtime, new Endpoint(s));
            current = session;
            sessions.incrementAndGet();
            LOG.info("{}: front-end connected on {}", runtime.name(), path);
            if (closed) {
                session.disconnect();
            }
            session.run();
        } catch (IOException e) {
            LOG.error("{}: cannot set up the connection: {}", runtime.name(), e.getMessage());
            closeQuietly(s);
        } finally {
            current = null;
        }
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

    @Override
    public void close() {
        closed = true;
        BackendSession s = current;
        if (s != null) {
            s.disconnect(); // the session thread stops its rings, resets the device and returns
        }
        closeQuietly(connecting);
        if (server != null) {
            // closing a listening socket does not wake a thread blocked in accept() on Linux: connect once
            wakeAccept();
            try {
                server.close(); // deleteOnClose removes the socket file we created
            } catch (IOException e) {
                LOG.warn("{}: closing {}: {}", runtime.name(), path, e.getMessage());
            }
        }
        join(loop);
        Thread t = sessionThread;
        if (t != null) {
            join(t);
        }
    }

    private void wakeAccept() {
        try {
            answers(AFUNIXSocketAddress.of(path));
        } catch (IOException e) {
            // the path is gone; accept() fails on close then
        }
    }

    private void join(Thread t) {
        try {
            t.join(JOIN_MS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (t.isAlive()) {
            LOG.warn("{}: thread {} did not stop within {} ms", runtime.name(), t.getName(), JOIN_MS);
        }
    }

    /** Sleeps in short steps so {@link #close()} never waits for a whole back-off. */
    private void sleep(long ms) {
        long deadline = System.nanoTime() + ms * 1_000_000L;
        while (!closed && System.nanoTime() < deadline) {
            try {
                Thread.sleep(Math.min(20, ms));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private static void closeQuietly(AFUNIXSocket s) {
        if (s != null) {
            try {
                s.close();
            } catch (IOException ignored) {
                // nothing to release
            }
        }
    }
}
