package org.jvhost.engine.transport;

import java.io.EOFException;
import java.io.FileDescriptor;
import java.io.IOException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.newsclub.net.unix.AFUNIXSocketChannel;
import org.newsclub.net.unix.FileDescriptorCast;

/**
 * Typed records with fds over a blocking Unix stream socket: the framing of a hot upgrade's handover
 * (the record types and bodies are {@code org.jvhost.engine.server.HandoverLayout}'s). Every record is
 * one {@code sendmsg} with its fds riding on the first byte, as a vhost-user message:
 *
 * <pre>
 *  0        4        8        12
 *  +--------+--------+--------+---------------------+
 *  |  type  | length |  nfds  |  body (length bytes) |     SCM_RIGHTS: nfds fds
 *  +--------+--------+--------+---------------------+
 *   u32, little-endian
 * </pre>
 *
 * Reads go through {@link SocketReader} (every fd the kernel installs is ours, whatever the count) one
 * header, then one body, so the fds of two records never mix. A record whose fd count differs from its
 * {@code nfds} is malformed: its fds are closed and the link is unusable. Not thread-safe.
 */
public final class RecordLink implements AutoCloseable {
    public static final int HEADER_SIZE = 12;
    /** The most fds one record carries (a vhost-user message carries at most 8). */
    public static final int MAX_FDS = 8;
    /** The largest body accepted (a device's state blob is the largest). */
    public static final int MAX_BODY = 1 << 20;
    public static final ByteOrder ORDER = ByteOrder.LITTLE_ENDIAN;

    /** One received record; its fds are the receiver's to take or close. */
    public record Record(int type, ByteBuffer body, int[] fds) {
        /** Closes the fds nobody took (a taken fd is set to -1). */
        public void closeFds() {
            for (int i = 0; i < fds.length; i++) {
                LinuxSys.closeQuietly(fds[i]);
                fds[i] = -1;
            }
        }
    }

    private final AFUNIXSocketChannel channel;
    private final int fd;
    private final SocketReader reader;

    /** Takes over {@code channel} (switched to blocking mode for sends); {@link #close()} closes it. */
    public RecordLink(AFUNIXSocketChannel channel) throws IOException {
        this.channel = channel;
        channel.configureBlocking(true);
        this.fd = FileDescriptorCast.using(channel.getFileDescriptor()).as(Integer.class);
        this.reader = new SocketReader(fd);
    }

    /** The peer's uid (SO_PEERCRED). */
    public long peerUid() throws IOException {
        return channel.getPeerCredentials().getUid();
    }

    /** The peer's pid (SO_PEERCRED). */
    public long peerPid() throws IOException {
        return channel.getPeerCredentials().getPid();
    }

    /**
     * Sends one record; the kernel duplicates {@code fds} into the peer (they stay the caller's).
     *
     * @throws IllegalArgumentException if more than {@link #MAX_FDS} fds or {@link #MAX_BODY} bytes
     */
    public void send(int type, ByteBuffer body, int... fds) throws IOException {
        int len = body == null ? 0 : body.remaining();
        if (fds.length > MAX_FDS || len > MAX_BODY) {
            throw new IllegalArgumentException("record " + type + ": " + fds.length + " fds, " + len
                    + " bytes (at most " + MAX_FDS + " and " + MAX_BODY + ")");
        }
        ByteBuffer msg = ByteBuffer.allocate(HEADER_SIZE + len).order(ORDER);
        msg.putInt(type).putInt(len).putInt(fds.length);
        if (len > 0) {
            msg.put(body.duplicate());
        }
        msg.flip();
        if (fds.length > 0) {
            FileDescriptor[] jfds = new FileDescriptor[fds.length];
            for (int i = 0; i < fds.length; i++) {
                jfds[i] = FileDescriptorCast.unsafeUsing(fds[i]).getFileDescriptor();
            }
            channel.setOutboundFileDescriptors(jfds); // rides on the first write below
        }
        while (msg.hasRemaining()) {
            channel.write(msg);
        }
    }

    /**
     * Waits for the next record until {@code deadlineNanos} ({@link System#nanoTime()}).
     *
     * @throws EOFException           if the peer closed the link (between or inside records)
     * @throws SocketTimeoutException if the deadline passed first
     * @throws IOException            on a malformed record (its fds are closed)
     */
    public Record receive(long deadlineNanos) throws IOException {
        try {
            ByteBuffer header = ByteBuffer.allocate(HEADER_SIZE).order(ORDER);
            fill(header, deadlineNanos);
            int type = header.getInt(0);
            int len = header.getInt(4);
            int nfds = header.getInt(8);
            if (len < 0 || len > MAX_BODY || nfds < 0 || nfds > MAX_FDS) {
                throw new IOException("malformed handover record " + type + ": " + len + " bytes, " + nfds + " fds");
            }
            ByteBuffer body = ByteBuffer.allocate(len).order(ORDER);
            fill(body, deadlineNanos);
            if (reader.fdCount() != nfds) {
                throw new IOException("handover record " + type + " announced " + nfds + " fds and carried "
                        + reader.fdCount());
            }
            return new Record(type, body.flip(), reader.takeFds());
        } catch (IOException | RuntimeException e) {
            reader.closeFds();
            throw e;
        }
    }

    private void fill(ByteBuffer buf, long deadlineNanos) throws IOException {
        while (buf.hasRemaining()) {
            int r = reader.read(buf);
            if (r < 0) {
                throw new EOFException("the other jvhost closed the handover link");
            }
            if (r == 0) {
                long leftMs = (deadlineNanos - System.nanoTime()) / 1_000_000L;
                if (leftMs <= 0) {
                    throw new SocketTimeoutException("no handover record within the deadline");
                }
                try {
                    LinuxSys.awaitReadable(fd, (int) Math.min(leftMs, 1000));
                } catch (NativeException e) {
                    throw new IOException(e.getMessage(), e);
                }
            }
        }
    }

    /** Closes the socket and any fds of a half-received record. Idempotent. */
    @Override
    public void close() {
        reader.close();
        try {
            channel.close();
        } catch (IOException ignored) {
            // nothing left to release
        }
    }
}
