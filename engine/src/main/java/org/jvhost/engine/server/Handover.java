package org.jvhost.engine.server;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.function.LongConsumer;
import java.util.function.Supplier;
import org.jvhost.engine.event.DeviceRuntime;
import org.jvhost.engine.session.SessionImage;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.transport.RecordLink;
import org.jvhost.spi.DeviceState;
import org.newsclub.net.unix.AFUNIXServerSocketChannel;
import org.newsclub.net.unix.AFUNIXSocketChannel;
import org.newsclub.net.unix.FileDescriptorCast;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The running jvhost's side of a hot upgrade: a private socket (mode 0600, only this uid may connect:
 * SO_PEERCRED) where a successor started with {@code serve --takeover} asks for everything this process
 * serves ({@link HandoverLayout}). On a HELLO it pauses every device at a request boundary, sends the
 * listening sockets, connections, their state and the {@code services}' sockets, and waits for the ACK:
 * then {@code handedOver} runs, and the caller must exit 0 at once without closing anything (no
 * socket file removed, no socket shut down: the kernel drops this process's copies). If the
 * successor refuses, dies or does not answer within {@link #ACK_MS}, every device resumes where it
 * paused and this process serves on; no front-end notices either way.
 *
 * <p>One thread, {@code jvhost-handover}, waits for successors; it never runs on a loop.
 */
public final class Handover implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Handover.class);
    /** How long a successor may take to say HELLO. */
    static final long HELLO_MS = 5_000;
    /** How long a connection may stay inside a request before the upgrade gives up on pausing it. */
    static final long BUSY_MS = 2_000;
    /** How long the successor may take to create every device and acknowledge (1,000 devices take a few s). */
    static final long ACK_MS = 60_000;

    /**
     * What one device hands over, made on its loop once it is paused.
     *
     * @param listenerFd the listening socket, or -1 (CONNECT mode)
     * @param connection the paused connection, or null
     * @param image      the connection's state as requests, or null
     * @param state      the device's own state, or null if it does not take part (its connection is then
     *                   closed at the handover instead of passed on)
     */
    record Outgoing(DeviceRuntime runtime, int listenerFd, Connection connection, SessionImage image,
            DeviceState state) {
        boolean passesConnection() {
            return connection != null && state != null;
        }
    }

    private final Host host;
    private final SocketFile file;
    private final Supplier<Map<String, Integer>> services;
    private final LongConsumer handedOver;
    private final Thread thread;
    private volatile boolean closed;

    private Handover(Host host, SocketFile file, Supplier<Map<String, Integer>> services, LongConsumer handedOver) {
        this.host = host;
        this.file = file;
        this.services = services;
        this.handedOver = handedOver;
        this.thread = new Thread(this::run, "jvhost-handover");
        this.thread.setDaemon(true);
    }

    /**
     * Listens for a successor on {@code socket} (owner-only).
     *
     * @param services   listening sockets besides the devices' (the control socket), by name, sent as SERVICE
     * @param handedOver runs with the successor's pid once it acknowledged; this process must then exit
     *                   at once, closing nothing
     */
    public static Handover listen(Host host, Path socket, Supplier<Map<String, Integer>> services,
            LongConsumer handedOver) throws IOException {
        SocketFile file = SocketFile.listen(socket.toAbsolutePath(), SocketAccess.DEFAULT);
        file.channel().configureBlocking(false);
        Handover h = new Handover(host, file, services, handedOver);
        h.thread.start();
        LOG.info("handover socket for hot upgrades on {} (owner-only)", socket);
        return h;
    }

    private void run() {
        AFUNIXServerSocketChannel server = file.channel();
        while (!closed) {
            AFUNIXSocketChannel ch;
            try {
                LinuxSys.awaitReadable(FileDescriptorCast.using(server.getFileDescriptor()).as(Integer.class), 500);
                ch = server.accept();
            } catch (IOException e) { // NativeException included
                if (!closed) {
                    LOG.warn("handover socket: {}", e.getMessage());
                    sleepQuietly(500);
                }
                continue;
            }
            if (ch == null) {
                continue;
            }
            long pid = serve(ch);
            if (pid > 0) {
                handedOver.accept(pid);
                return;
            }
        }
    }

    /** One successor; its pid once it acknowledged, else -1 (and everything serves on). */
    private long serve(AFUNIXSocketChannel ch) {
        try (RecordLink link = new RecordLink(ch)) {
            long uid = link.peerUid();
            if (uid != LinuxSys.effectiveUid()) {
                LOG.warn("handover: refused a process of uid {} (only uid {} may take over)", uid, LinuxSys.effectiveUid());
                return -1;
            }
            RecordLink.Record hello = link.receive(System.nanoTime() + HELLO_MS * 1_000_000L);
            hello.closeFds();
            if (hello.type() != HandoverLayout.HELLO || hello.body().remaining() < 8) {
                LOG.warn("handover: the successor did not say HELLO (record {})", hello.type());
                return -1;
            }
            int version = hello.body().getInt();
            long pid = Integer.toUnsignedLong(hello.body().getInt());
            if (version != HandoverLayout.VERSION) {
                refuse(link, "handover version " + version + " is not " + HandoverLayout.VERSION);
                return -1;
            }
            return handOver(link, pid) ? pid : -1;
        } catch (IOException e) {
            LOG.warn("handover: {}", e.getMessage());
            return -1;
        }
    }

    private boolean handOver(RecordLink link, long pid) {
        long start = System.nanoTime();
        List<Outgoing> out;
        try {
            out = host.pauseAll(BUSY_MS);
        } catch (IOException e) {
            LOG.warn("handover to pid {} refused: {}", pid, e.getMessage());
            refuse(link, e.getMessage());
            return false;
        }
        long paused = System.nanoTime();
        LOG.info("paused {} device(s) for the handover to pid {}", out.size(), pid);
        try {
            for (Outgoing o : out) {
                send(link, o);
            }
            for (Map.Entry<String, Integer> s : services.get().entrySet()) {
                link.send(HandoverLayout.SERVICE, HandoverLayout.string(ByteBuffer.allocate(0), s.getKey()), s.getValue());
            }
            link.send(HandoverLayout.END, HandoverLayout.ints(out.size()));
            RecordLink.Record answer = link.receive(System.nanoTime() + ACK_MS * 1_000_000L);
            answer.closeFds();
            if (answer.type() != HandoverLayout.ACK) {
                throw new IOException(answer.type() == HandoverLayout.REFUSE
                        ? "it refused: " + HandoverLayout.readString(answer.body()) : "record " + answer.type() + " instead of ACK");
            }
        } catch (IOException | RuntimeException e) {
            host.resumeAll();
            LOG.error("handover to pid {} failed ({}); all {} device(s) resumed, still serving", pid, e.getMessage(),
                    out.size());
            return false;
        }
        LOG.info("handed {} device(s) over to pid {}: paused in {} ms, acknowledged after {} ms; exiting", out.size(),
                pid, (paused - start) / 1_000_000L, (System.nanoTime() - start) / 1_000_000L);
        return true;
    }

    private static void send(RecordLink link, Outgoing o) throws IOException {
        String name = o.runtime().name();
        boolean conn = o.passesConnection();
        int flags = (o.listenerFd() >= 0 ? HandoverLayout.F_LISTENER : 0) | (conn ? HandoverLayout.F_CONNECTION : 0);
        int[] fds = o.listenerFd() >= 0 && conn ? new int[] {o.listenerFd(), o.connection().socketFd()}
                : o.listenerFd() >= 0 ? new int[] {o.listenerFd()}
                : conn ? new int[] {o.connection().socketFd()} : new int[0];
        link.send(HandoverLayout.DEVICE, HandoverLayout.string(HandoverLayout.ints(flags), name), fds);
        if (!conn) {
            return;
        }
        DeviceState st = o.state();
        ByteBuffer head = HandoverLayout.string(HandoverLayout.ints(st.version()), st.format());
        byte[] data = st.data();
        link.send(HandoverLayout.STATE, ByteBuffer.allocate(head.remaining() + data.length).put(head).put(data).flip(),
                st.fds());
        for (SessionImage.Request r : o.image().requests()) {
            ByteBuffer msg = ByteBuffer.allocate(org.jvhost.engine.protocol.MessageHeader.SIZE + r.payload().remaining())
                    .order(org.jvhost.engine.protocol.MessageHeader.ORDER);
            new org.jvhost.engine.protocol.MessageHeader(r.code(), org.jvhost.engine.protocol.MessageHeader.VERSION,
                    r.payload().remaining()).encode(msg);
            msg.put(org.jvhost.engine.protocol.MessageHeader.SIZE, r.payload(), r.payload().position(), r.payload().remaining());
            link.send(HandoverLayout.REQUEST, msg.position(0).limit(msg.capacity()), r.fds());
        }
    }

    private static void refuse(RecordLink link, String reason) {
        try {
            link.send(HandoverLayout.REFUSE, HandoverLayout.string(ByteBuffer.allocate(0), reason));
        } catch (IOException ignored) {
            // the successor is gone already
        }
    }

    /**
     * A device's state for the successor, or null if it does not take part (or saving failed, or its
     * connection holds {@code notInImage}, something the handover cannot carry yet: logged).
     */
    static DeviceState saveState(DeviceRuntime runtime, String notInImage) {
        DeviceState state;
        try {
            state = runtime.device().saveState();
        } catch (RuntimeException e) {
            LOG.warn("{}: saving the device state failed; its front-end is disconnected at the upgrade",
                    runtime.name(), e);
            return null;
        }
        if (state == null) {
            LOG.warn("{}: the device does not save its state for a hot upgrade; its front-end is disconnected "
                    + "and reconnects to the new process", runtime.name());
        } else if (notInImage != null) {
            LOG.warn("{}: its connection's {} is not handed over yet; its front-end is disconnected at the upgrade "
                    + "and reconnects to the new process", runtime.name(), notInImage);
            return null;
        }
        return state;
    }

    private static void sleepQuietly(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Stops listening for successors; the socket file goes. */
    @Override
    public void close() {
        closed = true;
        try {
            if (Thread.currentThread() != thread) {
                thread.join(2000);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try {
            file.channel().close();
        } catch (IOException ignored) {
            // closing anyway
        }
        file.delete();
    }
}
