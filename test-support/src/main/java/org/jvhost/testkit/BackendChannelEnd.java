package org.jvhost.testkit;

import com.sun.jna.Memory;
import java.io.EOFException;
import java.io.IOException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.MessageHeader;
import org.jvhost.engine.sys.LinuxSys;

/**
 * The front-end's end of a back-end request channel (SET_BACKEND_REQ_FD): reads what the back-end
 * sends there (CONFIG_CHANGE_MSG...) and answers it, as QEMU does, or not, as a stalled front-end.
 * A plain socket pair: the other end goes to the back-end and is closed here once sent, so the back-end
 * closing its copy is seen as the end of the stream.
 */
public final class BackendChannelEnd implements AutoCloseable {
    /** One back-end request: its header and payload. */
    public record Request(MessageHeader header, ByteBuffer payload) {
    }

    private final int fd;
    private final Memory scratch = new Memory(4096);

    private BackendChannelEnd(int fd) {
        this.fd = fd;
    }

    /**
     * Makes a socket pair and hands one end to the back-end with SET_BACKEND_REQ_FD (NEED_REPLY: the
     * front-end must have negotiated REPLY_ACK); a refusal raises {@link ScriptedFrontend.RefusedException}.
     */
    public static BackendChannelEnd open(ScriptedFrontend fe) throws IOException {
        int[] pair = LinuxSys.socketPair();
        try {
            long ack = fe.call(FrontendRequest.SET_BACKEND_REQ_FD, null, pair[1]).u64();
            if (ack != 0) {
                LinuxSys.closeQuietly(pair[0]);
                throw new ScriptedFrontend.RefusedException(FrontendRequest.SET_BACKEND_REQ_FD, ack);
            }
        } finally {
            LinuxSys.closeQuietly(pair[1]);
        }
        return new BackendChannelEnd(pair[0]);
    }

    /**
     * As {@link #open} for a front-end without REPLY_ACK: SET_BACKEND_REQ_FD has no reply then, so a
     * GET_FEATURES after it shows it was read (the connection would have closed on a refusal).
     */
    public static BackendChannelEnd openWithoutReply(ScriptedFrontend fe) throws IOException {
        int[] pair = LinuxSys.socketPair();
        try {
            fe.send(FrontendRequest.SET_BACKEND_REQ_FD.code(), MessageHeader.VERSION, null, pair[1]);
            fe.getFeatures();
        } finally {
            LinuxSys.closeQuietly(pair[1]);
        }
        return new BackendChannelEnd(pair[0]);
    }

    /** The next request from the back-end; null if none comes within {@code timeoutMs}. */
    public Request await(long timeoutMs) throws IOException {
        ByteBuffer h = ByteBuffer.allocate(MessageHeader.SIZE).order(MessageHeader.ORDER);
        if (!fill(h, timeoutMs, true)) {
            return null;
        }
        MessageHeader header = MessageHeader.decode(h.flip());
        ByteBuffer body = ByteBuffer.allocate(header.size()).order(MessageHeader.ORDER);
        fill(body, 2000, false);
        return new Request(header, body.flip());
    }

    /** Answers request {@code code} with a REPLY_ACK of {@code value} (0: success). */
    public void reply(int code, long value) throws IOException {
        ByteBuffer msg = ByteBuffer.allocate(MessageHeader.SIZE + 8).order(MessageHeader.ORDER);
        MessageHeader.reply(code, 8).encode(msg);
        msg.putLong(MessageHeader.SIZE, value);
        sendRaw(msg.array());
    }

    /** Writes raw bytes (a garbled reply). */
    public void sendRaw(byte[] bytes) throws IOException {
        scratch.write(0, bytes, 0, bytes.length);
        if (LinuxSys.sendNow(fd, Memory.nativeValue(scratch), bytes.length) != bytes.length) {
            throw new IOException("the back-end's channel has no room for " + bytes.length + " bytes");
        }
    }

    /** True once the back-end closed its end (waits up to {@code timeoutMs}). */
    public boolean isClosedByPeer(long timeoutMs) throws IOException {
        try {
            fill(ByteBuffer.allocate(1), timeoutMs, true);
            return false; // nothing, or a byte: still open
        } catch (EOFException e) {
            return true;
        }
    }

    private boolean fill(ByteBuffer buf, long timeoutMs, boolean mayTimeOut) throws IOException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        while (buf.hasRemaining()) {
            long n = LinuxSys.receiveNow(fd, Memory.nativeValue(scratch), Math.min(buf.remaining(), 4096));
            if (n == 0) {
                throw new EOFException("the back-end closed its request channel");
            }
            if (n > 0) {
                buf.put(scratch.getByteArray(0, (int) n));
                continue;
            }
            if (System.nanoTime() - deadline > 0) {
                if (mayTimeOut && buf.position() == 0) {
                    return false;
                }
                throw new SocketTimeoutException("a partial back-end request");
            }
            try {
                Thread.sleep(5);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException(e);
            }
        }
        return true;
    }

    @Override
    public void close() {
        LinuxSys.closeQuietly(fd);
    }
}
