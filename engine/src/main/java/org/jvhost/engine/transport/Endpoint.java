package org.jvhost.engine.transport;

import java.io.EOFException;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
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
 * junixsocket tracks every fd it receives and closes the still-open ones when the socket closes, so a
 * libc {@code close} of its int would later close an unrelated file that reused the number
 * (java-stack §1.6). Each received fd is therefore duplicated (CLOEXEC, ours to close with
 * {@link LinuxSys#closeQuietly}) and junixsocket's original is closed the Java way at once.
 */
public final class Endpoint implements AutoCloseable {
    /** junixsocket clamps any positive size to 256 bytes: room for 60 fds, the spec sends at most 8. */
    private static final int ANCILLARY_BUFFER = 256;
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
    private final ByteBuffer header = ByteBuffer.allocate(MessageHeader.SIZE).order(MessageHeader.ORDER);
    private MessageHeader pendingHeader;
    private ByteBuffer body;
    private int[] pendingFds = new int[0];
    private long startedNanos;
    /** The rest of a reply the socket had no room for, or null. */
    private ByteBuffer unsent;
    private long unsentSince;

    /** Takes over {@code channel}, switching it to non-blocking mode. */
    public Endpoint(AFUNIXSocketChannel channel) throws IOException {
        this.channel = channel;
        // must be set before the first read, otherwise the kernel discards the fds of that message
        channel.setAncillaryReceiveBufferSize(ANCILLARY_BUFFER);
        channel.configureBlocking(false);
        this.fd = FileDescriptorCast.using(channel.getFileDescriptor()).as(Integer.class);
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
            FdPolicy.check(FrontendRequest.nameOf(h.request()), request, payload, pendingFds.length);
            Message m = new Message(h, payload, pendingFds);
            pendingFds = new int[0];
            pendingHeader = null;
            body = null;
            header.clear();
            return m;
        } catch (IOException | ProtocolException | RuntimeException e) {
            closePendingFds();
            throw e;
        }
    }

    /** Reads into {@code buf} what has arrived (never more than it has room for); true once it is full. */
    private boolean fill(ByteBuffer buf) throws IOException, ProtocolException {
        while (buf.hasRemaining()) {
            int r = channel.read(buf);
            collectFds();
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
        closePendingFds();
    }

    @Override
    public String toString() {
        return channel.toString();
    }

    /** Takes ownership of the fds collected by the reads so far (see the class comment). */
    private void collectFds() throws IOException, ProtocolException {
        FileDescriptor[] received = channel.getReceivedFileDescriptors();
        if (received == null || received.length == 0) {
            return;
        }
        int base = pendingFds.length;
        pendingFds = Arrays.copyOf(pendingFds, base + received.length);
        Arrays.fill(pendingFds, base, pendingFds.length, -1);
        IOException failure = null;
        for (int i = 0; i < received.length; i++) {
            try {
                pendingFds[base + i] = FileDescriptorCast.duplicating(received[i]).as(Integer.class);
            } catch (IOException e) {
                failure = e;
            } finally {
                closeJavaWay(received[i]);
            }
        }
        if (failure != null) {
            throw failure;
        }
        if (pendingFds.length > MAX_FDS) {
            throw ProtocolException.malformed("message carries " + pendingFds.length + " fds, at most "
                    + MAX_FDS + " allowed");
        }
    }

    private static void closeJavaWay(FileDescriptor fd) {
        try {
            new FileInputStream(fd).close();
        } catch (IOException ignored) {
            // the duplicate (if made) is what we keep; junixsocket forgets the original either way
        }
    }

    private void closePendingFds() {
        for (int fd : pendingFds) {
            LinuxSys.closeQuietly(fd);
        }
        pendingFds = new int[0];
    }
}
