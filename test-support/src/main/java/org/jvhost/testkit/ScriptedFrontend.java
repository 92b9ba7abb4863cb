package org.jvhost.testkit;

import java.io.EOFException;
import java.io.FileDescriptor;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.jvhost.engine.memory.RegionSpec;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.LogLayout;
import org.jvhost.engine.protocol.MemoryTableLayout;
import org.jvhost.engine.protocol.MessageHeader;
import org.jvhost.engine.protocol.Payloads;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.engine.protocol.SingleMemRegionLayout;
import org.jvhost.engine.protocol.U64Layout;
import org.jvhost.engine.protocol.VringAddrLayout;
import org.jvhost.engine.protocol.VringStateLayout;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.spi.VirtioFeatures;
import org.newsclub.net.unix.AFUNIXServerSocket;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;
import org.newsclub.net.unix.FileDescriptorCast;

/**
 * A vhost-user front-end written in Java, for device and protocol tests: it plays QEMU's part over a
 * real socket. It can send any request with any payload and fds (including broken ones), and offers
 * the usual sequence as one method per request. Guest memory is memfd-backed and mapped here too, so
 * a test lays out rings and buffers through {@link GuestRegion#buffer()} and the back-end sees them.
 *
 * <pre>{@code
 * try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
 *     fe.setOwner();
 *     fe.setFeatures(fe.getFeatures());
 *     fe.setProtocolFeatures(fe.getProtocolFeatures());
 *     GuestRegion ram = fe.addRegion(0, 1 << 20);
 *     fe.setMemTable();
 *     fe.setVringNum(0, 256); fe.setVringBase(0, 0);
 *     fe.setVringAddrGpa(0, 0x0, 0x1000, 0x2000);
 *     fe.setVringCall(0); fe.setVringKick(0); fe.setVringEnable(0, true);
 *     fe.kick(0); fe.waitCall(0, 1000);
 * }
 * }</pre>
 *
 * Not thread-safe: one test thread drives it.
 */
public final class ScriptedFrontend implements AutoCloseable {

    /** A reply from the back-end. */
    public record Reply(MessageHeader header, ByteBuffer payload) {
        /** The payload as u64 (features, acks...). */
        public long u64() {
            return U64Layout.get(payload);
        }
    }

    /** One guest-memory region, memfd-backed and mapped in this process. */
    public static final class GuestRegion {
        private final long guestAddress;
        private final long size;
        private final int memfd;
        private final long address;
        private final ByteBuffer buffer;

        GuestRegion(long guestAddress, long size, int memfd, long address) {
            this.guestAddress = guestAddress;
            this.size = size;
            this.memfd = memfd;
            this.address = address;
            this.buffer = LinuxSys.buffer(address, size);
        }

        public long guestAddress() {
            return guestAddress;
        }

        public long size() {
            return size;
        }

        /** The front-end's virtual address of the first byte (what ring addresses are given in). */
        public long userAddress() {
            return address;
        }

        /** The memfd (owned by the front-end; sent as a duplicate). */
        public int memfd() {
            return memfd;
        }

        /** The region's bytes, shared with the back-end (native byte order; use absolute get/put). */
        public ByteBuffer buffer() {
            return buffer;
        }

        /** The wire description of this region. */
        public RegionSpec spec() {
            return new RegionSpec(guestAddress, size, address, 0);
        }

        boolean containsGpa(long gpa) {
            return gpa >= guestAddress && gpa - guestAddress < size;
        }
    }

    private AFUNIXSocket socket;
    private InputStream in;
    private OutputStream out;
    private final List<GuestRegion> regions = new ArrayList<>();
    private final Map<Integer, Integer> kickFds = new HashMap<>();
    private final Map<Integer, Integer> callFds = new HashMap<>();
    private final Map<Integer, Integer> errFds = new HashMap<>();
    private final List<Integer> ownedFds = new ArrayList<>();
    private boolean replyAck;
    /** Whether the test drives packed rings: only then does {@link #getFeatures()} keep RING_PACKED. */
    private boolean packedRings;

    private ScriptedFrontend(AFUNIXSocket socket) throws IOException {
        this.socket = socket;
        this.in = socket.getInputStream();
        this.out = socket.getOutputStream();
    }

    /** Connects to a back-end listening on {@code socket}. */
    public static ScriptedFrontend connect(Path socket) throws IOException {
        return new ScriptedFrontend(AFUNIXSocket.connectTo(AFUNIXSocketAddress.of(socket)));
    }

    /**
     * Connects anew to a back-end listening on {@code path}, keeping the guest memory and eventfds, as
     * QEMU with {@code reconnect=1} does after the back-end restarted; the old connection is closed. The
     * caller negotiates and configures the rings again.
     */
    public void reconnect(Path path) throws IOException {
        socket.close();
        socket = AFUNIXSocket.connectTo(AFUNIXSocketAddress.of(path));
        in = socket.getInputStream();
        out = socket.getOutputStream();
        replyAck = false; // nothing is negotiated on the new connection yet
    }

    /** Waits for a back-end to connect to {@code server} (the back-end's CONNECT mode). */
    public static ScriptedFrontend accept(AFUNIXServerSocket server) throws IOException {
        return new ScriptedFrontend(server.accept());
    }

    /**
     * From now on, requests without a reply of their own are sent with NEED_REPLY and their REPLY_ACK is
     * read; a non-zero ack raises {@link RefusedException}. Enable only after REPLY_ACK was negotiated.
     */
    public void useReplyAck(boolean on) {
        this.replyAck = on;
    }

    // ---- raw access ------------------------------------------------------------------------------

    /** Sends one message exactly as given, with {@code fds} (duplicated by the kernel; still owned by the caller). */
    public void send(int request, int flags, ByteBuffer payload, int... fds) throws IOException {
        int size = payload == null ? 0 : payload.remaining();
        ByteBuffer msg = ByteBuffer.allocate(MessageHeader.SIZE + size).order(MessageHeader.ORDER);
        new MessageHeader(request, flags, size).encode(msg);
        if (size > 0) {
            msg.put(MessageHeader.SIZE, payload, payload.position(), size);
        }
        sendRaw(msg.array(), fds);
    }

    /** Writes raw bytes (for malformed-message tests), attaching {@code fds} to the first byte. */
    public void sendRaw(byte[] bytes, int... fds) throws IOException {
        if (fds.length > 0) {
            FileDescriptor[] jfds = new FileDescriptor[fds.length];
            for (int i = 0; i < fds.length; i++) {
                jfds[i] = FileDescriptorCast.unsafeUsing(fds[i]).getFileDescriptor();
            }
            socket.setOutboundFileDescriptors(jfds);
        }
        out.write(bytes);
        out.flush();
    }

    /** Reads one reply. */
    public Reply readReply() throws IOException {
        byte[] h = readFully(MessageHeader.SIZE);
        MessageHeader header = MessageHeader.decode(ByteBuffer.wrap(h).order(MessageHeader.ORDER));
        if (!header.isReply()) {
            throw new IOException("back-end sent a message without the REPLY flag: " + header);
        }
        ByteBuffer body = ByteBuffer.wrap(readFully(header.size())).order(MessageHeader.ORDER);
        return new Reply(header, body);
    }

    /**
     * Sends {@code request} with NEED_REPLY and returns its reply with the fd the back-end attached
     * (GET_INFLIGHT_FD), which the caller owns; -1 if none came.
     */
    public Reply callForFd(FrontendRequest request, ByteBuffer payload, int[] fd) throws IOException {
        socket.setAncillaryReceiveBufferSize(256);
        Reply r = call(request, payload);
        FileDescriptor[] got = socket.getReceivedFileDescriptors();
        // a duplicate of our own: junixsocket closes the fds it received with the socket
        fd[0] = got == null || got.length == 0 ? -1
                : LinuxSys.dupCloexec(FileDescriptorCast.using(got[0]).as(Integer.class));
        return r;
    }

    /**
     * Sends {@code request} with NEED_REPLY and returns the reply (for requests with a reply payload, or
     * to read a REPLY_ACK).
     */
    public Reply call(FrontendRequest request, ByteBuffer payload, int... fds) throws IOException {
        send(request.code(), MessageHeader.VERSION | MessageHeader.NEED_REPLY, payload, fds);
        Reply r = readReply();
        if (r.header().request() != request.code()) {
            throw new IOException("reply to " + FrontendRequest.nameOf(r.header().request()) + ", expected " + request);
        }
        return r;
    }

    /** True once the back-end closed the connection (waits up to {@code timeoutMs} for it). */
    public boolean isClosedByPeer(int timeoutMs) throws IOException {
        try {
            socket.setSoTimeout(timeoutMs);
            return in.read() < 0;
        } catch (java.net.SocketTimeoutException e) {
            return false;
        } catch (IOException e) {
            return true; // reset by peer
        } finally {
            if (!socket.isClosed()) {
                try {
                    socket.setSoTimeout(0);
                } catch (IOException ignored) {
                    // closed meanwhile
                }
            }
        }
    }

    // ---- the usual requests ---------------------------------------------------------------------

    /**
     * GET_FEATURES as a driver uses the answer: the back-end's offer minus what this front-end does not
     * implement, which is what {@code setFeatures(getFeatures())} then acks. The rings a test lays out
     * are split rings, so VIRTIO_F_RING_PACKED is removed unless the test asked for packed rings
     * ({@link #usePackedRings}). VIRTIO_F_IN_ORDER is always removed: the kit's mock rings read one used
     * entry per buffer, not one per in-order batch. {@link #getOfferedFeatures()} gives the offer as it is.
     */
    public long getFeatures() throws IOException {
        return getOfferedFeatures() & (packedRings ? ~0L : ~VirtioFeatures.RING_PACKED) & ~VirtioFeatures.IN_ORDER;
    }

    /** GET_FEATURES: the back-end's offer, every bit of it. */
    public long getOfferedFeatures() throws IOException {
        return get(FrontendRequest.GET_FEATURES, null);
    }

    /**
     * Whether the test lays out packed rings (virtio 1.2 section 2.8, e.g. with {@link MockPackedQueue}):
     * then {@link #getFeatures()} keeps VIRTIO_F_RING_PACKED if the back-end offers it. Off by default.
     */
    public ScriptedFrontend usePackedRings(boolean on) {
        packedRings = on;
        return this;
    }

    public void setFeatures(long features) throws IOException {
        set(FrontendRequest.SET_FEATURES, U64Layout.of(features));
    }

    public long getProtocolFeatures() throws IOException {
        return get(FrontendRequest.GET_PROTOCOL_FEATURES, null);
    }

    /** Sets protocol features; if they include REPLY_ACK, later requests use it (see {@link #useReplyAck}). */
    public void setProtocolFeatures(long features) throws IOException {
        set(FrontendRequest.SET_PROTOCOL_FEATURES, U64Layout.of(features));
        useReplyAck((features & ProtocolFeatures.REPLY_ACK) != 0);
    }

    public void setOwner() throws IOException {
        set(FrontendRequest.SET_OWNER, null);
    }

    public long getQueueNum() throws IOException {
        return get(FrontendRequest.GET_QUEUE_NUM, null);
    }

    /** Creates a memfd of {@code size} bytes (sealable, as QEMU's memory backends) for guest range {@code gpa}. */
    public GuestRegion addRegion(long gpa, long size) throws IOException {
        return addRegion(gpa, size, true);
    }

    /**
     * Like {@link #addRegion(long, long)}; with {@code sealable} false the memfd refuses seals, as a
     * front-end's file might, so the back-end cannot stop it from shrinking (for SIGBUS tests).
     */
    public GuestRegion addRegion(long gpa, long size, boolean sealable) throws IOException {
        int fd = LinuxSys.memfdCreate("jvhost-test-guest",
                (sealable ? LinuxSys.MFD_ALLOW_SEALING : 0) | LinuxSys.MFD_CLOEXEC);
        try {
            LinuxSys.truncate(fd, size);
            long addr = LinuxSys.mmap(size, LinuxSys.PROT_READ | LinuxSys.PROT_WRITE, LinuxSys.MAP_SHARED, fd, 0);
            GuestRegion r = new GuestRegion(gpa, size, fd, addr);
            regions.add(r);
            return r;
        } catch (IOException | RuntimeException e) {
            LinuxSys.closeQuietly(fd);
            throw e;
        }
    }

    public List<GuestRegion> regions() {
        return List.copyOf(regions);
    }

    /** Sends SET_MEM_TABLE with every region made by {@link #addRegion}. */
    public void setMemTable() throws IOException {
        List<RegionSpec> specs = new ArrayList<>();
        int[] fds = new int[regions.size()];
        for (int i = 0; i < fds.length; i++) {
            specs.add(regions.get(i).spec());
            fds[i] = regions.get(i).memfd();
        }
        set(FrontendRequest.SET_MEM_TABLE, MemoryTableLayout.of(specs), fds);
    }

    /** ADD_MEM_REG for a region made by {@link #addRegion}. */
    public void addMemReg(GuestRegion r) throws IOException {
        set(FrontendRequest.ADD_MEM_REG, SingleMemRegionLayout.of(r.spec()), r.memfd());
    }

    /** REM_MEM_REG for a region (no fd, as the spec allows). */
    public void remMemReg(GuestRegion r) throws IOException {
        set(FrontendRequest.REM_MEM_REG, SingleMemRegionLayout.of(r.spec()));
    }

    public void setVringNum(int queue, int num) throws IOException {
        set(FrontendRequest.SET_VRING_NUM, VringStateLayout.of(queue, num));
    }

    public void setVringBase(int queue, int base) throws IOException {
        set(FrontendRequest.SET_VRING_BASE, VringStateLayout.of(queue, base));
    }

    /** SET_VRING_ADDR with front-end virtual addresses. */
    public void setVringAddr(int queue, long descUser, long usedUser, long availUser) throws IOException {
        set(FrontendRequest.SET_VRING_ADDR, VringAddrLayout.of(queue, 0, descUser, usedUser, availUser, 0));
    }

    /** SET_VRING_ADDR with guest-physical addresses, translated through the regions like QEMU does. */
    public void setVringAddrGpa(int queue, long descGpa, long availGpa, long usedGpa) throws IOException {
        setVringAddr(queue, toUser(descGpa), toUser(usedGpa), toUser(availGpa));
    }

    /**
     * SET_VRING_ADDR with guest-physical addresses and VHOST_VRING_F_LOG: while VHOST_F_LOG_ALL is on,
     * the back-end logs its used-ring writes at {@code logGuestAddress}, as QEMU asks during a migration.
     */
    public void setVringAddrLogged(int queue, long descGpa, long availGpa, long usedGpa, long logGuestAddress)
            throws IOException {
        set(FrontendRequest.SET_VRING_ADDR, VringAddrLayout.of(queue, VringAddrLayout.F_LOG, toUser(descGpa),
                toUser(usedGpa), toUser(availGpa), logGuestAddress));
    }

    /**
     * SET_LOG_BASE as QEMU sends it with LOG_SHMFD: the log of {@code size} bytes at {@code offset} in
     * {@code logFd}, without NEED_REPLY; then reads the reply the spec requires (an empty payload).
     */
    public Reply setLogBase(int logFd, long size, long offset) throws IOException {
        send(FrontendRequest.SET_LOG_BASE.code(), MessageHeader.VERSION, LogLayout.of(size, offset), logFd);
        return expectReply(FrontendRequest.SET_LOG_BASE);
    }

    /** The front-end virtual address of {@code gpa}. */
    public long toUser(long gpa) {
        for (GuestRegion r : regions) {
            if (r.containsGpa(gpa)) {
                return r.userAddress() + (gpa - r.guestAddress());
            }
        }
        throw new IllegalArgumentException(String.format("gpa 0x%x is in no region", gpa));
    }

    /** Creates a kick eventfd for {@code queue} and sends it (SET_VRING_KICK starts the ring). */
    public void setVringKick(int queue) throws IOException {
        int fd = eventfd(kickFds, queue);
        set(FrontendRequest.SET_VRING_KICK, U64Layout.of(queue), fd);
    }

    /** Creates a call eventfd for {@code queue} and sends it. */
    public void setVringCall(int queue) throws IOException {
        int fd = eventfd(callFds, queue);
        set(FrontendRequest.SET_VRING_CALL, U64Layout.of(queue), fd);
    }

    /** Creates an error eventfd for {@code queue} and sends it (SET_VRING_ERR). */
    public void setVringErr(int queue) throws IOException {
        int fd = eventfd(errFds, queue);
        set(FrontendRequest.SET_VRING_ERR, U64Layout.of(queue), fd);
    }

    public void setVringEnable(int queue, boolean enable) throws IOException {
        set(FrontendRequest.SET_VRING_ENABLE, VringStateLayout.of(queue, enable ? 1 : 0));
    }

    /** GET_VRING_BASE: stops the ring and returns the next avail index. */
    public int getVringBase(int queue) throws IOException {
        send(FrontendRequest.GET_VRING_BASE.code(), MessageHeader.VERSION, VringStateLayout.of(queue, 0));
        Reply r = expectReply(FrontendRequest.GET_VRING_BASE);
        if (r.payload().remaining() != VringStateLayout.SIZE) {
            throw new RefusedException(FrontendRequest.GET_VRING_BASE, r.payload().remaining() == 8 ? r.u64() : -1);
        }
        return VringStateLayout.num(r.payload());
    }

    /** Kicks {@code queue} (writes its kick eventfd). */
    public void kick(int queue) throws IOException {
        LinuxSys.eventfdWrite(fdFor(kickFds, queue, "kick"), 1);
    }

    /**
     * Waits until the back-end signals {@code queue}'s call eventfd, consuming the signal.
     *
     * @return true if signalled within {@code timeoutMs}
     */
    public boolean waitCall(int queue, long timeoutMs) throws IOException {
        return waitSignal(fdFor(callFds, queue, "call"), timeoutMs);
    }

    /**
     * Waits until the back-end signals {@code queue}'s error eventfd (it broke the ring), consuming it.
     *
     * @return true if signalled within {@code timeoutMs}
     */
    public boolean waitErr(int queue, long timeoutMs) throws IOException {
        return waitSignal(fdFor(errFds, queue, "error"), timeoutMs);
    }

    private static boolean waitSignal(int fd, long timeoutMs) throws IOException {
        long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
        do {
            if (LinuxSys.eventfdRead(fd) > 0) {
                return true;
            }
            try {
                Thread.sleep(1);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        } while (System.nanoTime() < deadline);
        return false;
    }

    /** A u64 request with NEED_REPLY=0 that expects a reply payload. */
    private long get(FrontendRequest request, ByteBuffer payload) throws IOException {
        send(request.code(), MessageHeader.VERSION, payload);
        Reply r = expectReply(request);
        if (r.payload().remaining() != U64Layout.SIZE) {
            throw new IOException(request + ": reply payload of " + r.payload().remaining() + " bytes");
        }
        return r.u64();
    }

    /** A request without a reply payload; with REPLY_ACK in use, waits for the ack. */
    private void set(FrontendRequest request, ByteBuffer payload, int... fds) throws IOException {
        int flags = MessageHeader.VERSION | (replyAck ? MessageHeader.NEED_REPLY : 0);
        send(request.code(), flags, payload, fds);
        if (replyAck) {
            long ack = expectReply(request).u64();
            if (ack != 0) {
                throw new RefusedException(request, ack);
            }
        }
    }

    private Reply expectReply(FrontendRequest request) throws IOException {
        Reply r = readReply();
        if (r.header().request() != request.code()) {
            throw new IOException("reply to " + FrontendRequest.nameOf(r.header().request()) + ", expected " + request);
        }
        return r;
    }

    private int eventfd(Map<Integer, Integer> fds, int queue) throws IOException {
        int fd = LinuxSys.eventfd(LinuxSys.EFD_NONBLOCK | LinuxSys.EFD_CLOEXEC);
        ownedFds.add(fd);
        fds.put(queue, fd);
        return fd;
    }

    private static int fdFor(Map<Integer, Integer> fds, int queue, String what) {
        Integer fd = fds.get(queue);
        if (fd == null) {
            throw new IllegalStateException("no " + what + " eventfd was sent for queue " + queue);
        }
        return fd;
    }

    private byte[] readFully(int n) throws IOException {
        byte[] b = new byte[n];
        int off = 0;
        while (off < n) {
            int r = in.read(b, off, n - off);
            if (r < 0) {
                throw new EOFException("back-end closed the connection");
            }
            off += r;
        }
        return b;
    }

    /** Closes the connection, unmaps the regions and closes every fd this front-end created. */
    @Override
    public void close() throws IOException {
        try {
            socket.close();
        } finally {
            for (GuestRegion r : regions) {
                try {
                    LinuxSys.munmap(r.address, r.size);
                } catch (IOException ignored) {
                    // best effort in test teardown
                }
                LinuxSys.closeQuietly(r.memfd);
            }
            regions.clear();
            ownedFds.forEach(LinuxSys::closeQuietly);
            ownedFds.clear();
        }
    }

    /** The back-end answered a request with a non-zero REPLY_ACK. */
    public static final class RefusedException extends IOException {
        private static final long serialVersionUID = 1L;
        private final long ack;

        RefusedException(FrontendRequest request, long ack) {
            super(request + " refused by the back-end (ack " + ack + ")");
            this.ack = ack;
        }

        public long ack() {
            return ack;
        }
    }
}
