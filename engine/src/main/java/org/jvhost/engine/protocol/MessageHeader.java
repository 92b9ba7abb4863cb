package org.jvhost.engine.protocol;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The header every vhost-user message starts with (spec "Message Specification"), native endian:
 * <pre>
 *  0               4               8               12
 *  +---------------+---------------+---------------+----------------
 *  |    request    |     flags     |     size      |  payload (size bytes)
 *  +---------------+---------------+---------------+----------------
 *  flags: bits 0-1 version (must be 1), bit 2 REPLY, bit 3 NEED_REPLY, bits 4-31 reserved (zero)
 * </pre>
 *
 * @param request the request code ({@link FrontendRequest#code()})
 * @param flags   version and flag bits
 * @param size    payload bytes that follow
 */
public record MessageHeader(int request, int flags, int size) {
    public static final int SIZE = 12;
    public static final int VERSION = 0x1;
    public static final int VERSION_MASK = 0x3;
    /** Set on every reply the back-end sends. */
    public static final int REPLY = 0x4;
    /** The front-end wants a REPLY_ACK (only meaningful once REPLY_ACK is negotiated). */
    public static final int NEED_REPLY = 0x8;
    /**
     * The largest payload jvhost accepts. The largest the spec defines is GET/SET_CONFIG (12 + 256
     * bytes); a bigger size is a corrupt or hostile stream, refused before any allocation.
     */
    public static final int MAX_PAYLOAD = 4096;

    /** The wire byte order: the spec says native endian; every supported host is little endian. */
    public static final ByteOrder ORDER = ByteOrder.nativeOrder();

    /** Reads a header from {@code buf} at its position (absolute reads, position unchanged). */
    public static MessageHeader decode(ByteBuffer buf) {
        int p = buf.position();
        return new MessageHeader(buf.getInt(p), buf.getInt(p + 4), buf.getInt(p + 8));
    }

    /** Writes this header at the buffer's position (absolute writes, position unchanged). */
    public void encode(ByteBuffer buf) {
        int p = buf.position();
        buf.putInt(p, request).putInt(p + 4, flags).putInt(p + 8, size);
    }

    /** A reply header for {@code request} carrying {@code size} payload bytes. */
    public static MessageHeader reply(int request, int size) {
        return new MessageHeader(request, VERSION | REPLY, size);
    }

    /**
     * The syntax checks that need only the header: version 1, no reserved bits, no REPLY bit on a
     * request, and a payload size jvhost is willing to read.
     */
    public void checkRequest() throws ProtocolException {
        String name = FrontendRequest.nameOf(request);
        if ((flags & VERSION_MASK) != VERSION) {
            throw ProtocolException.malformed(name + ": header version " + (flags & VERSION_MASK)
                    + " (flags 0x" + Integer.toHexString(flags) + "), expected 1");
        }
        if ((flags & ~(VERSION_MASK | NEED_REPLY)) != 0) {
            throw ProtocolException.malformed(name + ": reserved or REPLY bits set in flags 0x"
                    + Integer.toHexString(flags));
        }
        if (size < 0 || size > MAX_PAYLOAD) {
            throw ProtocolException.malformed(name + ": payload size " + Integer.toUnsignedString(size)
                    + " exceeds " + MAX_PAYLOAD);
        }
    }

    public boolean needReply() {
        return (flags & NEED_REPLY) != 0;
    }

    public boolean isReply() {
        return (flags & REPLY) != 0;
    }

    @Override
    public String toString() {
        return FrontendRequest.nameOf(request) + " flags=0x" + Integer.toHexString(flags) + " size=" + size;
    }
}
