package org.jvhost.engine.server;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.function.LongConsumer;
import java.util.function.Supplier;
import org.jvhost.engine.device.DeviceRuntime;
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
 * serves ({@link HandoverLayout}), in two phases. On a HELLO it freezes every device at a request boundary
 * (nothing more is accepted or read; the rings run on) and sends the listening sockets, connections, the
 * {@code services}' sockets and, for each device that saved its resources, the connection's set-up; the
 * successor creates its devices meanwhile. On its READY the rings pause, and only where they stand and
 * each device's state follow. Then it waits for the ACK (and then, briefly, for the successor's rings to
 * run: it closes the link): {@code handedOver} runs, and the caller must
 * exit 0 at once without closing anything (no socket file removed, no socket shut down: the kernel drops
 * this process's copies). If the successor refuses, dies or does not answer within {@link #ACK_MS} (each
 * phase), every device resumes where it stopped and this process serves on; no front-end notices either way.
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
    /** How long this process stays, after the ACK, for the successor's rings to run ({@link #awaitSuccessorRunning}). */
    static final long RUNNING_MS = 2_000;

    /**
     * What one device hands over in the first phase, made on its loop once it is frozen (its rings run).
     *
     * @param listenerFd the listening socket, or -1 (CONNECT mode)
     * @param connection the frozen connection, or null
     * @param setup      its image but where the rings stand, if the device saved its resources; else null
     * @param resources  what the successor creates the device with ({@code VhostUserDevice#saveResources}),
     *                   or null: a connection then goes, if at all, in the second phase, and the successor
     *                   creates its devices only after that
     */
    record Frozen(DeviceRuntime runtime, int listenerFd, Connection connection, SessionImage setup,
            DeviceState resources) {
        boolean early() {
            return resources != null;
        }

        boolean late() {
            return connection != null && resources == null;
        }
    }

    /**
     * What one device hands over in the second phase, made on its loop once its rings are paused.
     *
     * @param image the rest of the connection's image ({@code early}), or all of it
     * @param state the device's own state, or null if it does not take part (its connection is then
     *              closed at the handover instead of passed on)
     * @param early whether the connection went in the first phase
     */
    record Outgoing(DeviceRuntime runtime, Connection connection, SessionImage image, DeviceState state,
            boolean early) {
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
        List<Frozen> frozen;
        try {
            frozen = host.freezeAll(BUSY_MS);
        } catch (IOException e) {
            LOG.warn("handover to pid {} refused: {}", pid, e.getMessage());
            refuse(link, e.getMessage());
            return false;
        }
        long ready;
        long paused;
        long sent;
        List<Outgoing> out;
        try {
            sendFirstPhase(link, frozen);
            LOG.info("sent {} device(s) to pid {} while their rings run; it creates them", frozen.size(), pid);
            expect(link, HandoverLayout.READY);
            ready = System.nanoTime();
            out = host.pauseAll(BUSY_MS);
            paused = System.nanoTime();
            LOG.info("paused {} device(s) for the handover to pid {}", out.size(), pid);
            for (Outgoing o : out) {
                sendSecondPhase(link, o);
            }
            link.send(HandoverLayout.END, HandoverLayout.ints(out.size()));
            sent = System.nanoTime();
            expect(link, HandoverLayout.ACK);
        } catch (IOException | RuntimeException e) {
            host.resumeAll();
            LOG.error("handover to pid {} failed ({}); all {} device(s) resumed, still serving", pid, e.getMessage(),
                    frozen.size());
            return false;
        }
        long acked = System.nanoTime();
        awaitSuccessorRunning(link);
        LOG.info("handed {} device(s) over to pid {}: it was ready after {} ms, the rings paused in {} ms, the "
                + "second phase was sent {} ms after the pause and acknowledged {} ms after that; its rings ran {} ms "
                + "later; exiting", frozen.size(), pid, (ready - start) / 1_000_000L, (paused - ready) / 1_000_000L,
                (sent - paused) / 1_000_000L, (acked - sent) / 1_000_000L, (System.nanoTime() - acked) / 1_000_000L);
        return true;
    }

    /**
     * After the ACK, waits (at most {@link #RUNNING_MS}) until the successor closes the link, which it does
     * once its rings run again. Why: this process's exit is work for the kernel (every mapping and fd of a
     * JVM and of each connection: 17-32 ms for one device, measured), on the CPU the successor restarts the
     * rings on; exiting after their restart keeps that out of the traffic gap. This process serves nothing
     * meanwhile: its connections stay frozen and its rings paused.
     */
    private static void awaitSuccessorRunning(RecordLink link) {
        try {
            link.receive(System.nanoTime() + RUNNING_MS * 1_000_000L).closeFds(); // nothing more is sent: EOF
        } catch (IOException e) {
            // EOF: the successor runs (or died after its ACK); a timeout: it is slow. Exit either way.
        }
    }

    private static void expect(RecordLink link, int type) throws IOException {
        RecordLink.Record answer = link.receive(System.nanoTime() + ACK_MS * 1_000_000L);
        answer.closeFds();
        if (answer.type() != type) {
            throw new IOException(answer.type() == HandoverLayout.REFUSE
                    ? "it refused: " + HandoverLayout.readString(answer.body()) : "record " + answer.type() + " instead of "
                    + (type == HandoverLayout.ACK ? "ACK" : "READY"));
        }
    }

    /** DEVICE records, with an early connection's resources and setup; the services; PREPARED. */
    private void sendFirstPhase(RecordLink link, List<Frozen> frozen) throws IOException {
        for (Frozen f : frozen) {
            int flags = (f.listenerFd() >= 0 ? HandoverLayout.F_LISTENER : 0)
                    | (f.early() ? HandoverLayout.F_CONNECTION | HandoverLayout.F_EARLY : 0)
                    | (f.late() ? HandoverLayout.F_LATE : 0);
            int[] fds = f.listenerFd() >= 0 && f.early() ? new int[] {f.listenerFd(), f.connection().socketFd()}
                    : f.listenerFd() >= 0 ? new int[] {f.listenerFd()}
                    : f.early() ? new int[] {f.connection().socketFd()} : new int[0];
            link.send(HandoverLayout.DEVICE, HandoverLayout.string(HandoverLayout.ints(flags), f.runtime().name()), fds);
            if (f.early()) {
                sendState(link, f.resources());
                sendRequests(link, f.setup());
            }
        }
        for (Map.Entry<String, Integer> s : services.get().entrySet()) {
            link.send(HandoverLayout.SERVICE, HandoverLayout.string(ByteBuffer.allocate(0), s.getKey()), s.getValue());
        }
        link.send(HandoverLayout.PREPARED, HandoverLayout.ints(frozen.size()));
    }

    /**
     * A paused connection's RINGS record, state and requests. A device that saved its resources but no
     * state fails the handover: the successor has set it up already.
     */
    private static void sendSecondPhase(RecordLink link, Outgoing o) throws IOException {
        if (o.state() == null) {
            if (o.early()) {
                throw new IOException(o.runtime().name() + ": the device saved its resources but no state");
            }
            return; // its connection closes when this process exits; the front-end reconnects
        }
        int[] fds = o.early() ? new int[0] : new int[] {o.connection().socketFd()};
        link.send(HandoverLayout.RINGS, HandoverLayout.string(HandoverLayout.ints(o.early() ? 0 : HandoverLayout.F_CONNECTION),
                o.runtime().name()), fds);
        sendState(link, o.state());
        sendRequests(link, o.image());
    }

    private static void sendState(RecordLink link, DeviceState st) throws IOException {
        ByteBuffer head = HandoverLayout.string(HandoverLayout.ints(st.version()), st.format());
        byte[] data = st.data();
        link.send(HandoverLayout.STATE, ByteBuffer.allocate(head.remaining() + data.length).put(head).put(data).flip(),
                st.fds());
    }

    private static void sendRequests(RecordLink link, SessionImage image) throws IOException {
        for (SessionImage.Request r : image.requests()) {
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

    /** What the successor creates the device with, before the pause; null if the device saves none (or failed: logged). */
    static DeviceState saveResources(DeviceRuntime runtime) {
        try {
            return runtime.device().saveResources();
        } catch (RuntimeException e) {
            LOG.warn("{}: saving the device's resources failed; it is handed over after the pause", runtime.name(), e);
            return null;
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
