package org.jvhost.engine.server;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.jvhost.engine.protocol.MessageHeader;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.transport.Message;
import org.jvhost.engine.transport.RecordLink;
import org.jvhost.spi.DeviceState;
import org.jvhost.spi.VhostUserDevice;
import org.newsclub.net.unix.AFUNIXSocketAddress;
import org.newsclub.net.unix.AFUNIXSocketChannel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The successor's side of a hot upgrade ({@link Handover}, {@link HandoverLayout}): connects to the
 * running jvhost's handover socket, receives every device's sockets and state, and holds them while
 * the same devices are created here ({@link Host#adopt}). {@link #acknowledge()} then tells the running
 * process to exit; until then it keeps its rings paused, and resumes them if this process fails or
 * {@linkplain #close() closes} the link without acknowledging. Not thread-safe.
 */
public final class Takeover implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Takeover.class);

    /** One device as the previous process handed it over; every fd here is ours until taken. */
    public static final class Incoming {
        private final String name;
        private int listenerFd;
        private int connectionFd;
        private DeviceState state;
        private final List<Message> replay = new ArrayList<>();

        Incoming(String name, int listenerFd, int connectionFd) {
            this.name = name;
            this.listenerFd = listenerFd;
            this.connectionFd = connectionFd;
        }

        int listenerFd() {
            return listenerFd;
        }

        int takeListener() {
            int fd = listenerFd;
            listenerFd = -1;
            return fd;
        }

        int takeConnection() {
            int fd = connectionFd;
            connectionFd = -1;
            return fd;
        }

        List<Message> takeReplay() {
            List<Message> r = new ArrayList<>(replay);
            replay.clear();
            return r;
        }

        void closeReplay() {
            replay.forEach(Message::closeFds);
            replay.clear();
        }

        /**
         * Gives {@code device} the state its predecessor saved, if any.
         *
         * @throws IOException naming the device if it refuses the state (its fds are closed then)
         */
        void restoreState(VhostUserDevice device) throws IOException {
            DeviceState s = state;
            state = null;
            if (s == null) {
                return;
            }
            try {
                device.restoreState(s);
            } catch (RuntimeException e) {
                for (int fd : s.fds()) {
                    LinuxSys.closeQuietly(fd);
                }
                throw new IOException(name + ": the device cannot restore the state of the previous jvhost ("
                        + s + "): " + e.getMessage(), e);
            }
        }

        void close() {
            LinuxSys.closeQuietly(takeListener());
            LinuxSys.closeQuietly(takeConnection());
            closeReplay();
            if (state != null) {
                for (int fd : state.fds()) {
                    LinuxSys.closeQuietly(fd);
                }
                state = null;
            }
        }
    }

    private final RecordLink link;
    private final long predecessorPid;
    private final Map<String, Incoming> devices = new LinkedHashMap<>();
    private final Map<String, Integer> services = new LinkedHashMap<>();
    private boolean acknowledged;

    private Takeover(RecordLink link, long predecessorPid) {
        this.link = link;
        this.predecessorPid = predecessorPid;
    }

    /**
     * Connects to the running jvhost's handover socket and receives everything it serves. It pauses its
     * devices meanwhile.
     *
     * @throws IOException naming what failed: no jvhost there, another uid, a refusal (it could not pause:
     *                     a migration runs...), a malformed record, or no END within {@code timeoutMs}
     */
    public static Takeover receive(Path socket, long timeoutMs) throws IOException {
        AFUNIXSocketChannel ch;
        try {
            ch = AFUNIXSocketChannel.open(AFUNIXSocketAddress.of(socket));
        } catch (IOException e) {
            throw new IOException("no running jvhost to take over from on " + socket + ": " + e.getMessage(), e);
        }
        RecordLink link = new RecordLink(ch);
        Takeover t = null;
        try {
            if (link.peerUid() != LinuxSys.effectiveUid()) {
                throw new IOException(socket + " belongs to a process of uid " + link.peerUid() + ", not ours ("
                        + LinuxSys.effectiveUid() + ")");
            }
            t = new Takeover(link, link.peerPid());
            link.send(HandoverLayout.HELLO, HandoverLayout.ints(HandoverLayout.VERSION, (int) ProcessHandle.current().pid()));
            t.readAll(System.nanoTime() + timeoutMs * 1_000_000L);
            LOG.info("took over {} device(s) from pid {}", t.devices.size(), t.predecessorPid);
            return t;
        } catch (IOException | RuntimeException e) {
            if (t != null) {
                t.close();
            } else {
                link.close();
            }
            throw e;
        }
    }

    private void readAll(long deadline) throws IOException {
        Incoming current = null;
        while (true) {
            RecordLink.Record r = link.receive(deadline);
            try {
                switch (r.type()) {
                    case HandoverLayout.DEVICE -> current = device(r);
                    case HandoverLayout.STATE -> state(current, r);
                    case HandoverLayout.REQUEST -> request(current, r);
                    case HandoverLayout.SERVICE -> service(r);
                    case HandoverLayout.END -> {
                        return;
                    }
                    case HandoverLayout.REFUSE -> throw new IOException("the running jvhost refused the takeover: "
                            + HandoverLayout.readString(r.body()));
                    default -> throw new IOException("unexpected handover record " + r.type());
                }
            } finally {
                r.closeFds();
            }
        }
    }

    private Incoming device(RecordLink.Record r) throws IOException {
        int flags = r.body().getInt();
        String name = HandoverLayout.readString(r.body());
        int want = Integer.bitCount(flags & (HandoverLayout.F_LISTENER | HandoverLayout.F_CONNECTION));
        if (r.fds().length != want) {
            throw new IOException("handover: device " + name + " came with " + r.fds().length + " fds, flags say " + want);
        }
        int i = 0;
        int listener = (flags & HandoverLayout.F_LISTENER) != 0 ? take(r, i++) : -1;
        int connection = (flags & HandoverLayout.F_CONNECTION) != 0 ? take(r, i) : -1;
        Incoming in = new Incoming(name, listener, connection);
        Incoming dup = devices.put(name, in);
        if (dup != null) {
            dup.close();
            throw new IOException("handover: device " + name + " came twice");
        }
        return in;
    }

    private static void state(Incoming in, RecordLink.Record r) throws IOException {
        if (in == null) {
            throw new IOException("handover: a device state before any device");
        }
        int version = r.body().getInt();
        String format = HandoverLayout.readString(r.body());
        byte[] data = new byte[r.body().remaining()];
        r.body().get(data);
        int[] fds = new int[r.fds().length];
        for (int i = 0; i < fds.length; i++) {
            fds[i] = take(r, i);
        }
        in.state = new DeviceState(format, version, data, fds);
    }

    private static void request(Incoming in, RecordLink.Record r) throws IOException {
        if (in == null || in.connectionFd < 0) {
            throw new IOException("handover: a request for no connection");
        }
        ByteBuffer b = r.body().order(MessageHeader.ORDER);
        MessageHeader h = MessageHeader.decode(b);
        if (h.size() != b.remaining() - MessageHeader.SIZE) {
            throw new IOException("handover: request " + h + " with " + (b.remaining() - MessageHeader.SIZE) + " payload bytes");
        }
        ByteBuffer payload = ByteBuffer.allocate(h.size()).order(MessageHeader.ORDER);
        payload.put(0, b, MessageHeader.SIZE, h.size());
        int[] fds = new int[r.fds().length];
        for (int i = 0; i < fds.length; i++) {
            fds[i] = take(r, i);
        }
        in.replay.add(Message.replayed(h, payload, fds));
    }

    private void service(RecordLink.Record r) throws IOException {
        String name = HandoverLayout.readString(r.body());
        if (r.fds().length != 1) {
            throw new IOException("handover: service " + name + " without its socket");
        }
        Integer dup = services.put(name, take(r, 0));
        if (dup != null) {
            LinuxSys.closeQuietly(dup);
        }
    }

    private static int take(RecordLink.Record r, int i) {
        int fd = r.fds()[i];
        r.fds()[i] = -1;
        return fd;
    }

    /** The pid of the process taken over from. */
    public long predecessorPid() {
        return predecessorPid;
    }

    /** How many devices were handed over. */
    public int deviceCount() {
        return devices.size();
    }

    /** The device {@code name}'s part, once (null if the previous process had no such device). */
    synchronized Incoming claim(String name) {
        return devices.remove(name);
    }

    /** The state device {@code name} saved, still ours (null if none came); {@link #claim} takes it. */
    synchronized DeviceState peekState(String name) {
        Incoming in = devices.get(name);
        return in == null ? null : in.state;
    }

    /** The listening socket of service {@code name} (the control socket), now the caller's; -1 if none came. */
    public synchronized int takeService(String name) {
        Integer fd = services.remove(name);
        return fd == null ? -1 : fd;
    }

    /**
     * Tells the previous process that this one serves everything from now on: it exits. Devices it had
     * that this process did not create are closed here, with a WARN each (their front-ends see a
     * disconnect).
     */
    public synchronized void acknowledge() throws IOException {
        for (Incoming in : devices.values()) {
            LOG.warn("{}: handed over but not in this configuration; its front-end is disconnected", in.name);
            in.close();
        }
        devices.clear();
        link.send(HandoverLayout.ACK, HandoverLayout.ints((int) ProcessHandle.current().pid()));
        acknowledged = true;
    }

    /**
     * Ends the link: without {@link #acknowledge()} the previous process resumes serving. Closes every fd
     * not claimed.
     */
    @Override
    public synchronized void close() {
        if (!acknowledged) {
            devices.values().forEach(Incoming::close);
            devices.clear();
        }
        services.values().forEach(LinuxSys::closeQuietly);
        services.clear();
        link.close();
    }
}
