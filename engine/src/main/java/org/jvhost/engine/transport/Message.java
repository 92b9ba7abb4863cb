package org.jvhost.engine.transport;

import java.nio.ByteBuffer;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.MessageHeader;
import org.jvhost.engine.sys.LinuxSys;

/**
 * One received request: its header, its payload (wire order, position 0) and the fds that came with it.
 * The message owns its fds until a handler {@linkplain #takeFd takes} one; {@link #closeFds()} closes
 * whatever was not taken, so no path leaks an fd.
 */
public final class Message {
    private final MessageHeader header;
    private final FrontendRequest request;
    private final ByteBuffer payload;
    private final int[] fds;

    Message(MessageHeader header, ByteBuffer payload, int[] fds) {
        this.header = header;
        this.request = FrontendRequest.of(header.request());
        this.payload = payload;
        this.fds = fds;
    }

    /**
     * A request made here rather than read from a socket: a hot upgrade replays a connection's state to
     * the new process as the requests that set it up. The message owns {@code fds}.
     */
    public static Message replayed(MessageHeader header, ByteBuffer payload, int[] fds) {
        return new Message(header, payload, fds);
    }

    public MessageHeader header() {
        return header;
    }

    /** The request, or null for a code the spec does not define. */
    public FrontendRequest request() {
        return request;
    }

    /** The request's log name. */
    public String name() {
        return FrontendRequest.nameOf(header.request());
    }

    public ByteBuffer payload() {
        return payload;
    }

    public int fdCount() {
        return fds.length;
    }

    /** Hands fd {@code i} to the caller, who must close it; the message forgets it. */
    public int takeFd(int i) {
        int fd = fds[i];
        fds[i] = -1;
        return fd;
    }

    /** Closes every fd not taken. Idempotent. */
    public void closeFds() {
        for (int i = 0; i < fds.length; i++) {
            LinuxSys.closeQuietly(fds[i]);
            fds[i] = -1;
        }
    }
}
