package org.jvhost.engine.protocol;

/**
 * The protocol layer's one exception family. The {@link Kind} says what the session does about it:
 * a {@link Kind#MALFORMED} message breaks the connection (the stream can no longer be trusted), a
 * {@link Kind#REQUEST_FAILED} request is refused with a REPLY_ACK failure when the front-end asked for
 * one and otherwise also ends the connection (the spec gives the back-end no other way to say no).
 */
public final class ProtocolException extends Exception {
    private static final long serialVersionUID = 1L;

    /** How bad it is. */
    public enum Kind {
        /** The bytes or fds do not form a valid message: close the connection. */
        MALFORMED,
        /** A well-formed request the back-end cannot or will not carry out. */
        REQUEST_FAILED
    }

    private final Kind kind;

    private ProtocolException(Kind kind, String message, Throwable cause) {
        super(message, cause);
        this.kind = kind;
    }

    /** The message cannot be parsed; the message says which field and value. */
    public static ProtocolException malformed(String message) {
        return new ProtocolException(Kind.MALFORMED, message, null);
    }

    /** The request is refused; the message names the request and the reason. */
    public static ProtocolException failed(String message) {
        return new ProtocolException(Kind.REQUEST_FAILED, message, null);
    }

    /** The request is refused because of {@code cause}. */
    public static ProtocolException failed(String message, Throwable cause) {
        return new ProtocolException(Kind.REQUEST_FAILED, message, cause);
    }

    public Kind kind() {
        return kind;
    }

    public boolean isMalformed() {
        return kind == Kind.MALFORMED;
    }
}
