package org.jvhost.engine.server;

import java.io.IOException;
import java.nio.file.Path;
import java.util.function.Consumer;
import org.jvhost.engine.device.DeviceRuntime;
import org.newsclub.net.unix.AFUNIXSocketAddress;
import org.newsclub.net.unix.AFUNIXSocketChannel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * CONNECT mode: jvhost connects to a front-end listening on {@code path}, on its {@link ControlLoop}, and
 * after each failed attempt again from a timer, backing off from {@link #BACKOFF_MIN_MS} to
 * {@link #BACKOFF_MAX_MS}. A connection made (and admitted by the uid allow-list) is passed on. Loop
 * thread only, after construction.
 */
final class Connector {
    private static final Logger LOG = LoggerFactory.getLogger(Connector.class);
    private static final long BACKOFF_MIN_MS = 100;
    private static final long BACKOFF_MAX_MS = 2000;

    private final DeviceRuntime runtime;
    private final ControlLoop loop;
    private final Path path;
    private final SocketAccess access;
    private final Consumer<AFUNIXSocketChannel> connected;
    private ControlLoop.Timer retry;
    private long backoff = BACKOFF_MIN_MS;
    private boolean stopped;
    private boolean closed;

    Connector(DeviceRuntime runtime, ControlLoop loop, Path path, SocketAccess access,
            Consumer<AFUNIXSocketChannel> connected) {
        this.runtime = runtime;
        this.loop = loop;
        this.path = path;
        this.access = access;
        this.connected = connected;
    }

    /** Connects as soon as the loop gets to it (any thread). */
    void connectNow() {
        loop.execute(() -> {
            if (!closed) {
                stopped = false;
                tryConnect();
            }
        });
    }

    /** After a session: connects again in {@link #BACKOFF_MIN_MS}. */
    void connectSoon() {
        stopped = false;
        backoff = BACKOFF_MIN_MS;
        retry = loop.schedule(BACKOFF_MIN_MS, this::tryConnect);
    }

    /** For good: the device closes. */
    void close() {
        closed = true;
        stop();
    }

    /** No more attempts until {@link #connectNow} (a hot upgrade pauses). */
    void stop() {
        stopped = true;
        if (retry != null) {
            retry.cancel();
            retry = null;
        }
    }

    private void tryConnect() {
        retry = null;
        if (stopped || closed) {
            return;
        }
        AFUNIXSocketChannel ch = null;
        try {
            ch = AFUNIXSocketChannel.open();
            // non-blocking, so a front-end whose backlog is full costs a retry, not a stalled loop
            ch.configureBlocking(false);
            if (!ch.connect(AFUNIXSocketAddress.of(path))) {
                throw new IOException("connection pending (the front-end's backlog is full)");
            }
        } catch (IOException | RuntimeException e) {
            close(ch);
            LOG.debug("{}: connect to {} failed: {}", runtime.name(), path, e.getMessage());
            retryLater();
            return;
        }
        if (!Listener.admit(ch, access, runtime.name(), path.toString())) {
            retryLater();
            return;
        }
        backoff = BACKOFF_MIN_MS;
        connected.accept(ch);
    }

    private void retryLater() {
        retry = loop.schedule(backoff, this::tryConnect);
        backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    }

    private static void close(AFUNIXSocketChannel ch) {
        if (ch != null) {
            try {
                ch.close();
            } catch (IOException ignored) {
                // nothing was set up on it
            }
        }
    }
}
