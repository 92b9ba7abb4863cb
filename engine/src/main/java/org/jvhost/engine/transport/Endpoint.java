package org.jvhost.engine.transport;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.MessageHeader;
import org.jvhost.engine.protocol.Payloads;
import org.jvhost.engine.protocol.ProtocolException;
import org.jvhost.engine.sys.LinuxSys;
import org.newsclub.net.unix.AFUNIXSocketChannel;
import org.newsclub.net.unix.FileDescriptorCast;

/**
 * One vhost-user connection over a non-blocking channel, read incrementally by a control loop: each
 * {@link #receive()} takes what has arrived and returns a message once it is complete, so a front-end
 * that sends half a message holds a buffer, never a thread.
 *
 * <h2>Framing</h2>
 * The front-end sends header, body and fds in one {@code sendmsg}; the fds ride on the first byte. We
 * read at most the 12-byte header, collecting fds after every read, then at most {@code size} body
 * bytes. Reading more than one message at a time would make it impossible to tell which message the
 * fds belong to (java-stack §1.3); asking the kernel for no more than the current message needs is
 * what keeps each read inside one message.
 *
 * <h2>fd ownership</h2>
 * Reads go through {@link SocketReader}'s own {@code recvmsg}, not junixsocket, so every fd the kernel
 * installs is ours (CLOEXEC, closed with {@link LinuxSys#closeQuietly}) whatever the count: a message
 * with more than {@link #MAX_FDS} is refused with all of them closed. junixsocket keeps the socket
 * itself: it writes the replies and closes it.
 */
public final class Endpoint implements AutoCloseable {
    /**
     * The most fds a message may carry: SET_MEM_TABLE's 8 regions (spec "Memory region description";
     * more regions only come one at a time through ADD_MEM_REG).
     */
    private static final int MAX_FDS = 8;

    /** The front-end closed the connection between two messages: the normal end. */
    public static final class ClosedException extends EOFException {
        private static final long serialVersionUID = 1L;

        ClosedException() {
            super("front-end disconnected");
        }
    }

    private final AFUNIXSocketChannel channel;
    private final int fd;
    private final SocketReader reader;
    private final ByteBuffer header = ByteBuffer.allocate(MessageHeader.SIZE).order(MessageHeader.ORDER);
    private MessageHeader pendingHeader;
    private ByteBuffer body;
    private long startedNanos;
    /** The rest of a reply the socket had no room for, or null. */
    private ByteBuffer unsent;
    private long unsentSince;

    /** Takes over {@code channel}, switching it to non-blocking mode. */
    public Endpoint(AFUNIXSocketChannel channel) throws IOException {
        this.channel = channel;
        channel.configureBlocking(false);
        this.fd = FileDescriptorCast.using(channel.getFileDescriptor()).as(Integer.class);
        this.reader = new SocketReader(fd);
    }

    /** The socket's fd, for an epoll set only (junixsocket owns it: never close it directly). */
    public int fd() {
        return fd;
    }

    /** Whether part of a message has arrived and the rest has not. */
    public boolean inMessage() {
        return header.position() > 0;
    }

    /** When the first bytes of the message now arriving came ({@link System#nanoTime()}); valid while {@link #inMessage()}. */
    public long messageStartedNanos() {
        return startedNanos;
    }

    /**
     * Reads what has arrived, without blocking.
     *
     * @return the next complete request, or null if it has not fully arrived yet
     * @throws ClosedException   if the front-end closed the connection between messages
     * @throws ProtocolException (malformed) if the header, size or fd count is wrong; the connection is
     *                           then unusable. No fd of the bad message stays open.
     * @throws IOException       on a socket error or a connection closed in the middle of a message
     */
    public Message receive() throws IOException, ProtocolException {
        try {
            if (pendingHeader == null) {
                boolean fresh = header.position() == 0;
                boolean full = fill(header);
                if (fresh && header.position() > 0) {
                    startedNanos = System.nanoTime();
                }
                if (!full) {
                    return null;
                }
                MessageHeader h = MessageHeader.decode(header.duplicate().flip().order(MessageHeader.ORDER));
                h.checkRequest();
                pendingHeader = h;
                body = ByteBuffer.allocate(h.size()).order(MessageHeader.ORDER);
            }
            if (!fill(body)) {
                return null;
            }
            ByteBuffer payload = body.flip().order(MessageHeader.ORDER);
            MessageHeader h = pendingHeader;
            FrontendRequest request = FrontendRequest.of(h.request());
            if (request != null) {
                Payloads.checkSize(request, payload);
            }
            FdPolicy.check(FrontendRequest.nameOf(h.request()), request, payload, reader.fdCount());
            Message m = new Message(h, payload, reader.takeFds());
            pendingHeader = null;
            body = null;
            header.clear();
            return m;
        } catch (IOException | ProtocolException | RuntimeException e) {
            reader.closeFds();
            throw e;
        }
    }

    /** Reads into {@code buf} what has arrived (never more than it has room for); true once it is full. */
    private boolean fill(ByteBuffer buf) throws IOException, ProtocolException {
        while (buf.hasRemaining()) {
            int r = reader.read(buf);
            if (reader.fdCount() > MAX_FDS) {
                throw ProtocolException.malformed("message carries " + reader.fdCount() + " fds, at most "
                        + MAX_FDS + " allowed");
            }
            if (r < 0) {
                if (!inMessage()) {
                    throw new ClosedException();
                }
                int total = MessageHeader.SIZE + (pendingHeader == null ? 0 : pendingHeader.size());
                int got = header.position() + (body == null ? 0 : body.position());
                throw new EOFException("connection closed after " + got + " of " + total + " bytes of a message");
            }
            if (r == 0) {
                return false;
            }
        }
        return true;
    }

    /**
     * Sends a reply to {@code request} with {@code payload} (wire order, from position 0 to limit)
     * without waiting: what the socket's send buffer has no room for is kept and sent by {@link #flush()}
     * when the socket is writable again. The caller reads no further request while a reply is
     * {@linkplain #hasUnsent() unsent} (vhost-user is request/reply), so at most one reply waits here.
     *
     * @throws IOException if the socket fails
     * @throws IllegalStateException if an earlier reply is still unsent
     */
    public void reply(int request, ByteBuffer payload) throws IOException {
        reply(request, payload, -1);
    }

    /**
     * {@link #reply(int, ByteBuffer)} with {@code fd} attached (GET_INFLIGHT_FD hands the front-end a
     * memfd), or none if negative. The fd rides on the reply's first byte; the caller still owns it.
     */
    public void reply(int request, ByteBuffer payload, int fd) throws IOException {
        if (fd >= 0) {
            channel.setOutboundFileDescriptors(FileDescriptorCast.unsafeUsing(fd).getFileDescriptor());
        }
        try {
            replyNow(request, payload);
        } finally {
            if (fd >= 0) {
                channel.setOutboundFileDescriptors(); // the next reply carries none
            }
        }
    }

    private void replyNow(int request, ByteBuffer payload) throws IOException {
        if (unsent != null) {
            throw new IllegalStateException("a reply to " + request + " while " + unsent.remaining()
                    + " bytes of the previous reply are unsent");
        }
        int size = payload == null ? 0 : payload.remaining();
        ByteBuffer msg = ByteBuffer.allocate(MessageHeader.SIZE + size).order(MessageHeader.ORDER);
        MessageHeader.reply(request, size).encode(msg);
        if (size > 0) {
            msg.put(MessageHeader.SIZE, payload, payload.position(), size);
        }
        msg.position(0).limit(MessageHeader.SIZE + size);
        unsent = msg;
        unsentSince = System.nanoTime();
        flush();
    }

    /**
     * Sends what the socket takes of the unsent reply, without waiting.
     *
     * @return true if nothing is left unsent
     * @throws IOException if the socket fails
     */
    public boolean flush() throws IOException {
        if (unsent == null) {
            return true;
        }
        while (unsent.hasRemaining()) {
            if (channel.write(unsent) == 0) {
                return false;
            }
        }
        unsent = null;
        return true;
    }

    /** Whether part of a reply waits for room in the socket's send buffer (the front-end does not read). */
    public boolean hasUnsent() {
        return unsent != null;
    }

    /** When the unsent reply was made ({@link System#nanoTime()}); valid while {@link #hasUnsent()}. */
    public long unsentSinceNanos() {
        return unsentSince;
    }

    /** Closes the socket and any fds of a half-received message. Idempotent. */
    @Override
    public void close() {
        try {
            channel.close();
        } catch (IOException ignored) {
            // closing a dead socket: nothing left to release
        }
        reader.close();
    }

    @Override
    public String toString() {
        return channel.toString();
    }
}
