package org.jvhost.engine.transport;

import java.io.EOFException;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.util.Arrays;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.MessageHeader;
import org.jvhost.engine.protocol.Payloads;
import org.jvhost.engine.protocol.ProtocolException;
import org.jvhost.engine.sys.LinuxSys;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.FileDescriptorCast;

/**
 * One vhost-user connection, read with blocking I/O by the connection's control thread.
 *
 * <h2>Framing</h2>
 * The front-end sends header, body and fds in one {@code sendmsg}; the fds ride on the first byte. We
 * read exactly the 12-byte header, collect the fds, then read exactly {@code size} body bytes. Reading
 * more than one message at a time would make it impossible to tell which message the fds belong to
 * (java-stack §1.3).
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

    private final AFUNIXSocket socket;
    private final InputStream in;
    private final OutputStream out;
    private final byte[] headerBytes = new byte[MessageHeader.SIZE];
    private int[] pendingFds = new int[0];

    public Endpoint(AFUNIXSocket socket) throws IOException {
        this.socket = socket;
        // must be set before the first read, otherwise the kernel discards the fds of that message
        socket.setAncillaryReceiveBufferSize(ANCILLARY_BUFFER);
        this.in = socket.getInputStream();
        this.out = socket.getOutputStream();
    }

    /**
     * Reads the next request.
     *
     * @return the message, or null if the front-end closed the connection between messages
     * @throws ProtocolException (malformed) if the header, size or fd count is wrong; the connection is
     *                           then unusable. No fd of the bad message stays open.
     * @throws IOException       on a socket error or a connection closed in the middle of a message
     */
    public Message receive() throws IOException, ProtocolException {
        try {
            if (!readFully(headerBytes, headerBytes.length, true)) {
                return null;
            }
            collectFds();
            MessageHeader header = MessageHeader.decode(ByteBuffer.wrap(headerBytes).order(MessageHeader.ORDER));
            header.checkRequest();
            byte[] body = new byte[header.size()];
            readFully(body, body.length, false);
            collectFds();
            ByteBuffer payload = ByteBuffer.wrap(body).order(MessageHeader.ORDER);
            FrontendRequest request = FrontendRequest.of(header.request());
            if (request != null) {
                Payloads.checkSize(request, payload);
            }
            FdPolicy.check(FrontendRequest.nameOf(header.request()), request, payload, pendingFds.length);
            Message m = new Message(header, payload, pendingFds);
            pendingFds = new int[0];
            return m;
        } catch (IOException | ProtocolException | RuntimeException e) {
            closePendingFds();
            throw e;
        }
    }

    /** Sends a reply to {@code request} with {@code payload} (wire order, from position 0 to limit). */
    public void reply(int request, ByteBuffer payload) throws IOException {
        int size = payload == null ? 0 : payload.remaining();
        ByteBuffer msg = ByteBuffer.allocate(MessageHeader.SIZE + size).order(MessageHeader.ORDER);
        MessageHeader.reply(request, size).encode(msg);
        if (size > 0) {
            msg.put(MessageHeader.SIZE, payload, payload.position(), size);
        }
        synchronized (out) {
            out.write(msg.array());
            out.flush();
        }
    }

    /** Closes the socket; a blocked {@link #receive()} then fails. Idempotent. */
    @Override
    public void close() {
        try {
            socket.close();
        } catch (IOException ignored) {
            // closing a dead socket: nothing left to release
        }
        closePendingFds();
    }

    @Override
    public String toString() {
        return socket.toString();
    }

    private boolean readFully(byte[] b, int len, boolean eofAllowedAtStart) throws IOException {
        int n = 0;
        while (n < len) {
            int r = in.read(b, n, len - n);
            if (r < 0) {
                if (n == 0 && eofAllowedAtStart) {
                    return false;
                }
                throw new EOFException("connection closed after " + n + " of " + len + " bytes of a message");
            }
            n += r;
        }
        return true;
    }

    /** Takes ownership of the fds collected by the reads so far (see the class comment). */
    private void collectFds() throws IOException, ProtocolException {
        FileDescriptor[] received = socket.getReceivedFileDescriptors();
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
