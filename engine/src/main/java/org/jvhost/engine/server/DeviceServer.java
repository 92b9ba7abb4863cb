package org.jvhost.engine.server;

import java.io.IOException;
import java.nio.file.Files;
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
 * Meets one device's front-ends, one connection at a time, and runs each connection's
 * {@link BackendSession} on the control thread {@code jvhost-ctl-<device>}.
 */
final class DeviceServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(DeviceServer.class);
    private static final long BACKOFF_MIN_MS = 100;
    private static final long BACKOFF_MAX_MS = 2000;
    private static final long JOIN_MS = 3000;
    private static final long HANDOFF_GRACE_MS = 500;

    private final DeviceRuntime runtime;
    private final Path path;
    private final Host.Mode mode;
    private final AFUNIXServerSocket server;
    private final Thread control;
    private final AtomicLong sessions = new AtomicLong();
    private volatile boolean closed;
    private volatile BackendSession current;
    private volatile AFUNIXSocket connecting;
    /** A connection the busy-rejecter accepted just as the served one ended; served next. */
    private volatile AFUNIXSocket handoff;

    DeviceServer(DeviceRuntime runtime, Path path, Host.Mode mode) throws IOException {
        this.runtime = runtime;
        this.path = path;
        this.mode = mode;
        this.server = mode == Host.Mode.LISTEN ? bind(path) : null;
        this.control = new Thread(mode == Host.Mode.LISTEN ? this::acceptLoop : this::connectLoop,
                "jvhost-ctl-" + runtime.name());
        this.control.setDaemon(true);
        this.control.start();
    }

    /**
     * Binds the socket path. An existing file is replaced only if nothing answers on it (a stale socket
     * left by a crashed daemon); a live one means another back-end serves this path.
     */
    private static AFUNIXServerSocket bind(Path path) throws IOException {
        AFUNIXSocketAddress addr = AFUNIXSocketAddress.of(path);
        if (Files.exists(path, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
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
            AFUNIXSocket s = handoff;
            handoff = null;
            try {
                if (s == null) {
                    s = server.accept();
                }
            } catch (IOException e) {
                if (!closed) {
                    LOG.error("{}: accept on {} failed, the device stops listening: {}", runtime.name(), path,
                            e.getMessage());
                }
                return;
            }
            serve(s);
        }
    }

    private void connectLoop() {
        long backoff = BACKOFF_MIN_MS;
        while (!closed) {
            AFUNIXSocket s = null;
            try {
                s = AFUNIXSocket.newInstance();
                connecting = s;
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
            if (!closed) {
                sleep(BACKOFF_MIN_MS);
            }
        }
    }

    /** Serves one connection to its end, meanwhile turning other front-ends away. */
    private void serve(AFUNIXSocket s) {
        Thread rejecter = null;
        try {
            BackendSession session = new BackendSession(runtime, new Endpoint(s));
            current = session;
            sessions.incrementAndGet();
            LOG.info("{}: front-end connected on {}", runtime.name(), path);
            if (server != null) {
                rejecter = new Thread(this::rejectWhileBusy, "jvhost-ctl-" + runtime.name() + "-busy");
                rejecter.setDaemon(true);
                rejecter.start();
            }
            if (closed) {
                session.disconnect();
            }
            session.run();
        } catch (IOException e) {
            LOG.error("{}: cannot set up the connection: {}", runtime.name(), e.getMessage());
            closeQuietly(s);
        } finally {
            current = null;
            if (rejecter != null) {
                join(rejecter); // it notices current == null within its accept timeout
            }
        }
    }

    /**
     * While a front-end is connected, further connections are accepted and closed: the device serves
     * one front-end, and a second one must not hang in the listen backlog. A connection that arrives
     * while the served one is just ending (a front-end reconnecting at once) is kept for the accept
     * loop instead: it waits up to {@link #HANDOFF_GRACE_MS} for the current session to finish.
     */
    private void rejectWhileBusy() {
        // serve() runs on the control thread, so this thread is the only one accepting meanwhile
        try {
            server.setSoTimeout(200);
            while (current != null && !closed) {
                AFUNIXSocket extra;
                try {
                    extra = server.accept();
                } catch (java.net.SocketTimeoutException e) {
                    continue; // re-check whether the served connection ended
                }
                if (awaitIdle()) {
                    handoff = extra;
                    return;
                }
                LOG.warn("{}: a second front-end connected on {} while one is served; closing it",
                        runtime.name(), path);
                closeQuietly(extra);
            }
        } catch (IOException e) {
            // the server socket is closing
        } finally {
            try {
                server.setSoTimeout(0);
            } catch (IOException ignored) {
                // the server socket is closing
            }
        }
    }

    private boolean awaitIdle() {
        long deadline = System.nanoTime() + HANDOFF_GRACE_MS * 1_000_000L;
        while (current != null && System.nanoTime() < deadline) {
            sleep(10);
        }
        return current == null;
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

    Path path() {
        return path;
    }

    @Override
    public void close() {
        closed = true;
        BackendSession s = current;
        if (s != null) {
            s.disconnect();
        }
        closeQuietly(connecting);
        if (server != null) {
            try {
                server.close(); // deleteOnClose removes the socket file we created
            } catch (IOException e) {
                LOG.warn("{}: closing {}: {}", runtime.name(), path, e.getMessage());
            }
        }
        control.interrupt();
        join(control);
        closeQuietly(handoff);
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

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
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
