package org.jvhost.engine.server;

import java.io.IOException;
import java.util.function.Consumer;
import org.jvhost.engine.device.DeviceRuntime;
import org.jvhost.engine.event.EventHandler;
import org.jvhost.engine.sys.LinuxSys;
import org.newsclub.net.unix.AFUNIXServerSocketChannel;
import org.newsclub.net.unix.AFUNIXSocketChannel;
import org.newsclub.net.unix.FileDescriptorCast;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A device's listening socket, watched on its {@link ControlLoop}: accepts front-ends, admits those the
 * uid allow-list lets in ({@link #admit}) and passes them on. Loop thread only, after construction.
 *
 * <p>A failed {@code accept} on a listening socket that is still open is a passing shortage (EMFILE
 * or ENFILE at the fd limit, ENOBUFS, ENOMEM) and never stops the device: the front-end waits in the
 * backlog while accepting pauses, from {@link #ACCEPT_PAUSE_MIN_MS} doubling to {@link #ACCEPT_PAUSE_MAX_MS}
 * (a level-triggered listener would otherwise spin the control thread), with one WARN per episode.
 */
final class Listener {
    private static final Logger LOG = LoggerFactory.getLogger(Listener.class);
    private static final long ACCEPT_PAUSE_MIN_MS = 50;
    private static final long ACCEPT_PAUSE_MAX_MS = 1000;

    private final DeviceRuntime runtime;
    private final ControlLoop loop;
    private final AFUNIXServerSocketChannel server;
    private final SocketAccess access;
    private final String where;
    private final Consumer<AFUNIXSocketChannel> admitted;
    /** Made once, not at each {@link #watch}: after a hot upgrade's pause a first lambda capture costs ms. */
    private final EventHandler onReady = ev -> onAcceptable();
    private long token = -1;
    private ControlLoop.Timer resume;
    private long pause;
    /** When the current run of failed accepts began ({@link System#nanoTime()}); valid while pause > 0. */
    private long failingSince;
    private boolean closed;

    /** {@code admitted} takes each front-end let in. */
    Listener(DeviceRuntime runtime, ControlLoop loop, AFUNIXServerSocketChannel server, SocketAccess access,
            String where, Consumer<AFUNIXSocketChannel> admitted) {
        this.runtime = runtime;
        this.loop = loop;
        this.server = server;
        this.access = access;
        this.where = where;
        this.admitted = admitted;
    }

    /** The listening socket's fd (for a hot upgrade). */
    int fd() throws IOException {
        return FileDescriptorCast.using(server.getFileDescriptor()).as(Integer.class);
    }

    /** Watches the socket for front-ends (making it non-blocking first). */
    void watch() throws IOException {
        server.configureBlocking(false);
        token = loop.register(fd(), LinuxSys.EPOLLIN, onReady);
    }

    /** Watches the socket, or, if even that fails, retries as after a failed accept. */
    void watchOrRetry() {
        try {
            watch();
        } catch (IOException e) {
            onAcceptFailed(e);
        }
    }

    /** Stops watching (a hot upgrade pauses): front-ends wait in the backlog. */
    void unwatch() {
        if (token >= 0) {
            loop.unregister(token);
            token = -1;
        }
        if (resume != null) {
            resume.cancel();
            resume = null;
        }
    }

    /** Stops watching and closes the socket (its file is the caller's). */
    void close() {
        closed = true;
        unwatch();
        try {
            server.close();
        } catch (IOException ignored) {
            // nothing to release
        }
    }

    private void onAcceptable() {
        while (!closed && token >= 0) {
            AFUNIXSocketChannel ch;
            try {
                ch = server.accept();
            } catch (IOException e) {
                onAcceptFailed(e);
                return;
            }
            if (pause > 0) {
                LOG.info("{}: accepting front-ends on {} again after {} ms", runtime.name(), where,
                        (System.nanoTime() - failingSince) / 1_000_000L);
                pause = 0;
            }
            if (ch == null) {
                return;
            }
            if (admit(ch, access, runtime.name(), where)) {
                admitted.accept(ch);
            }
        }
    }

    /**
     * accept failed. junixsocket reports no errno, so the socket's state decides: closed (junixsocket
     * closes it when another socket file replaced ours) ends listening for good; open means a shortage
     * that passes, so watching pauses and resumes from a timer.
     */
    private void onAcceptFailed(IOException e) {
        unwatch();
        if (!server.isOpen()) {
            LOG.error("{}: the listening socket on {} was closed ({}); the device stops listening",
                    runtime.name(), where, e.getMessage());
            return;
        }
        if (pause == 0) {
            failingSince = System.nanoTime();
            pause = ACCEPT_PAUSE_MIN_MS;
            LOG.warn("{}: cannot accept front-ends on {}: {}; retrying every {} to {} ms until it passes",
                    runtime.name(), where, e.getMessage(), ACCEPT_PAUSE_MIN_MS, ACCEPT_PAUSE_MAX_MS);
        } else {
            pause = Math.min(pause * 2, ACCEPT_PAUSE_MAX_MS);
        }
        resume = loop.schedule(pause, this::resumeAccepting);
    }

    private void resumeAccepting() {
        resume = null;
        if (closed) {
            return;
        }
        try {
            watch();
        } catch (IOException e) {
            onAcceptFailed(e); // epoll_ctl itself short of memory: the same kind of shortage
            return;
        }
        onAcceptable();
    }

    /** The uid allow-list (SO_PEERCRED): false, with a WARN and the connection closed, for others. */
    static boolean admit(AFUNIXSocketChannel ch, SocketAccess access, String device, String where) {
        if (access.allowedUids().isEmpty()) {
            return true;
        }
        long uid;
        try {
            uid = ch.getPeerCredentials().getUid();
        } catch (IOException e) {
            LOG.warn("{}: refused a front-end on {}: cannot read its credentials: {}", device, where, e.getMessage());
            close(ch);
            return false;
        }
        if (!access.allows(uid)) {
            LOG.warn("{}: refused a front-end with uid {} on {}: allowed uids are {}", device, uid, where,
                    access.describeUids());
            close(ch);
            return false;
        }
        return true;
    }

    private static void close(AFUNIXSocketChannel ch) {
        try {
            ch.close();
        } catch (IOException ignored) {
            // nothing to release
        }
    }
}
