package org.jvhost.engine.server;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.jvhost.engine.protocol.MessageHeader;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.transport.Message;
import org.jvhost.engine.transport.RecordLink;
import org.jvhost.spi.DeviceState;
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
    /** How long the previous process may take to pause its rings and send the second phase. */
    static final long PHASE_MS = 30_000;

    private final RecordLink link;
    private final long predecessorPid;
    /** Every device handed over, by name, for the second phase; {@link #devices} those not claimed yet. */
    private final Map<String, IncomingDevice> all = new LinkedHashMap<>();
    private final Map<String, IncomingDevice> devices = new LinkedHashMap<>();
    private final Map<String, Integer> services = new LinkedHashMap<>();
    private boolean acknowledged;
    /** How long the JIT compiler took to go quiet after the rehearsal (ms; {@link Rehearsal#awaitCompilerQuiet}). */
    volatile long compilerQuietAfterMs;
    /** How long the collection before the pause took (ms; {@link Rehearsal#collectGarbage}). */
    volatile long collectedMs;
    /** Whether the second phase has come (READY sent, END received). */
    private boolean proceeded;

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
            t.readFirstPhase(System.nanoTime() + timeoutMs * 1_000_000L);
            if (t.all.values().stream().anyMatch(in -> (in.flags & HandoverLayout.F_LATE) != 0)) {
                LOG.info("a device saved no resources for an early start: every device is created after the "
                        + "previous jvhost paused its rings");
                t.proceed();
            } else {
                t.all.values().forEach(in -> in.twoPhase = true);
            }
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

    /**
     * The second phase: tells the previous process that every device is created (READY), so it pauses
     * its rings, and receives where they stand and each device's state. Once only.
     *
     * @throws IOException naming what failed: a refusal, a malformed record, or no END within {@link #PHASE_MS}
     */
    public synchronized void proceed() throws IOException {
        if (proceeded) {
            return;
        }
        proceeded = true;
        long compiled = Rehearsal.compilerMs();
        long t0 = System.nanoTime();
        link.send(HandoverLayout.READY, HandoverLayout.ints((int) ProcessHandle.current().pid()));
        long first = readSecondPhase(t0 + PHASE_MS * 1_000_000L);
        for (IncomingDevice in : all.values()) {
            if (!in.twoPhase) { // created from now on: the early requests go first in the replay
                in.replay.addAll(0, in.setup);
                in.setup.clear();
            }
        }
        long end = System.nanoTime();
        LOG.info("the previous jvhost (pid {}) paused its rings: its first record came {} ms after READY, its END {} ms "
                + "after that (before READY: a collection of {} ms, the JIT compiler quiet {} ms later; it compiled "
                + "for {} ms since)", predecessorPid, (first - t0) / 1_000_000L, (end - first) / 1_000_000L, collectedMs,
                compilerQuietAfterMs, Rehearsal.compilerMs() - compiled);
    }

    private void readFirstPhase(long deadline) throws IOException {
        IncomingDevice current = null;
        while (true) {
            RecordLink.Record r = link.receive(deadline);
            try {
                switch (r.type()) {
                    case HandoverLayout.DEVICE -> current = device(r);
                    case HandoverLayout.STATE -> current(current).resources = state(r);
                    case HandoverLayout.REQUEST -> current(current).setup.add(request(current, r));
                    case HandoverLayout.SERVICE -> service(r);
                    case HandoverLayout.PREPARED -> {
                        return;
                    }
                    case HandoverLayout.REFUSE -> throw new IOException("the running jvhost refused the takeover: "
                            + HandoverLayout.readString(r.body()));
                    default -> throw new IOException("unexpected handover record " + r.type() + " in the first phase");
                }
            } finally {
                r.closeFds();
            }
        }
    }

    /** Reads RINGS..END; returns when the first record came ({@link System#nanoTime()}). */
    private long readSecondPhase(long deadline) throws IOException {
        IncomingDevice current = null;
        long first = 0;
        while (true) {
            RecordLink.Record r = link.receive(deadline);
            first = first == 0 ? System.nanoTime() : first;
            try {
                switch (r.type()) {
                    case HandoverLayout.RINGS -> current = rings(r);
                    case HandoverLayout.STATE -> current(current).state = state(r);
                    case HandoverLayout.REQUEST -> current(current).replay.add(request(current, r));
                    case HandoverLayout.END -> {
                        return first;
                    }
                    case HandoverLayout.REFUSE -> throw new IOException("the running jvhost gave up the takeover: "
                            + HandoverLayout.readString(r.body()));
                    default -> throw new IOException("unexpected handover record " + r.type() + " in the second phase");
                }
            } finally {
                r.closeFds();
            }
        }
    }

    private static IncomingDevice current(IncomingDevice in) throws IOException {
        if (in == null) {
            throw new IOException("handover: a device state or request before any device");
        }
        return in;
    }

    /** RINGS: a connection's second phase; its fd comes here if the first phase did not bring it. */
    private IncomingDevice rings(RecordLink.Record r) throws IOException {
        int flags = r.body().getInt();
        String name = HandoverLayout.readString(r.body());
        IncomingDevice in = all.get(name);
        if (in == null || in.ringsCame) {
            throw new IOException("handover: rings of device " + name + (in == null ? ", which did not come" : " twice"));
        }
        boolean withFd = (flags & HandoverLayout.F_CONNECTION) != 0;
        boolean early = (in.flags & HandoverLayout.F_EARLY) != 0;
        if (withFd == early || r.fds().length != (withFd ? 1 : 0) || withFd && (in.flags & HandoverLayout.F_LATE) == 0) {
            throw new IOException("handover: rings of device " + name + " with " + r.fds().length + " fds, flags "
                    + flags + " after " + in.flags);
        }
        if (withFd) {
            in.connectionFd = take(r, 0);
        }
        in.ringsCame = true;
        return in;
    }

    private IncomingDevice device(RecordLink.Record r) throws IOException {
        int flags = r.body().getInt();
        String name = HandoverLayout.readString(r.body());
        int want = Integer.bitCount(flags & (HandoverLayout.F_LISTENER | HandoverLayout.F_CONNECTION));
        if (r.fds().length != want || ((flags & HandoverLayout.F_CONNECTION) != 0) != ((flags & HandoverLayout.F_EARLY) != 0)) {
            throw new IOException("handover: device " + name + " came with " + r.fds().length + " fds, flags " + flags);
        }
        int i = 0;
        int listener = (flags & HandoverLayout.F_LISTENER) != 0 ? take(r, i++) : -1;
        int connection = (flags & HandoverLayout.F_CONNECTION) != 0 ? take(r, i) : -1;
        IncomingDevice in = new IncomingDevice(name, flags, listener, connection);
        IncomingDevice dup = all.put(name, in);
        devices.put(name, in);
        if (dup != null) {
            dup.close();
            throw new IOException("handover: device " + name + " came twice");
        }
        return in;
    }

    private static DeviceState state(RecordLink.Record r) throws IOException {
        int version = r.body().getInt();
        String format = HandoverLayout.readString(r.body());
        byte[] data = new byte[r.body().remaining()];
        r.body().get(data);
        int[] fds = new int[r.fds().length];
        for (int i = 0; i < fds.length; i++) {
            fds[i] = take(r, i);
        }
        return new DeviceState(format, version, data, fds);
    }

    private static Message request(IncomingDevice in, RecordLink.Record r) throws IOException {
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
        return Message.replayed(h, payload, fds);
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

    /** Whether connections were set up early and their rings still run in the previous process. */
    synchronized boolean ringsRunElsewhere() {
        return !proceeded && all.values().stream().anyMatch(in -> (in.flags & HandoverLayout.F_EARLY) != 0);
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
    synchronized IncomingDevice claim(String name) {
        return devices.remove(name);
    }

    /**
     * What device {@code name} is created with, still ours (null if nothing came): the resources it saved
     * for an early start, else its state (one-phase). {@link #claim} takes it.
     */
    synchronized DeviceState peekState(String name) {
        IncomingDevice in = devices.get(name);
        return in == null ? null : in.resources != null ? in.resources : in.state;
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
        for (IncomingDevice in : devices.values()) {
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
            devices.values().forEach(IncomingDevice::close);
            devices.clear();
        }
        all.clear();
        for (int fd : services.values()) {
            LinuxSys.closeQuietly(fd);
        }
        services.clear();
        link.close();
    }
}
