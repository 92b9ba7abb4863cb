package org.jvhost.engine.server;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.jvhost.engine.transport.RecordLink;

/**
 * The hot-upgrade handover, version {@value #VERSION}: what the running jvhost (old) and its successor
 * (new) say over the private handover socket. Each record is framed by {@link RecordLink} (type, body
 * length, fd count, then the body, fds by SCM_RIGHTS); integers are u32 little-endian, strings
 * {@code u32 length + UTF-8}.
 *
 * <pre>
 *  new -&gt; old  HELLO    | version | pid |
 *  old -&gt; new  DEVICE   | flags | name |                          fds: [listener] [connection]
 *               REQUEST  | vhost-user header (12) | payload |     fds: the request's (at most 8)
 *               STATE    | version | format | data ...           fds: the device state's (at most 8)
 *               ...      (REQUEST and STATE belong to the DEVICE before them)
 *               SERVICE  | name |                                fds: [listening socket]
 *               END      | devices |
 *  new -&gt; old  ACK      | pid |          or   REFUSE | reason |
 *  old -&gt; new  REFUSE   | reason |       (instead of DEVICE..END: the old one cannot pause)
 * </pre>
 *
 * DEVICE flags: {@link #F_LISTENER} (a listening socket fd comes first), {@link #F_CONNECTION} (the live
 * vhost-user connection's fd follows). A device's REQUESTs are its connection's {@link
 * org.jvhost.engine.session.SessionImage}: the new process replays them into a fresh session. The old
 * process keeps its rings paused until ACK (it then exits 0) or until the link fails or REFUSE comes (it
 * then resumes them and keeps serving). The new process touches no socket and starts no ring before it
 * has sent ACK.
 */
public final class HandoverLayout {
    public static final int VERSION = 1;

    public static final int HELLO = 1;
    public static final int DEVICE = 2;
    public static final int REQUEST = 3;
    public static final int STATE = 4;
    public static final int SERVICE = 5;
    public static final int END = 6;
    public static final int ACK = 7;
    public static final int REFUSE = 8;

    public static final int F_LISTENER = 1;
    public static final int F_CONNECTION = 2;

    private HandoverLayout() {
    }

    /** The handover socket of a jvhost whose control socket is {@code control}: next to it, {@code control + ".handover"}. */
    public static java.nio.file.Path socketFor(java.nio.file.Path control) {
        return control.resolveSibling(control.getFileName() + ".handover");
    }

    static ByteBuffer ints(int... values) {
        ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(RecordLink.ORDER);
        for (int v : values) {
            b.putInt(v);
        }
        return b.flip();
    }

    static ByteBuffer string(ByteBuffer head, String s) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(head.remaining() + 4 + bytes.length).order(RecordLink.ORDER);
        b.put(head.duplicate()).putInt(bytes.length).put(bytes);
        return b.flip();
    }

    /** Reads a {@code u32 length + UTF-8} string at the buffer's position. */
    static String readString(ByteBuffer b) {
        int len = b.getInt();
        if (len < 0 || len > b.remaining()) {
            throw new IllegalArgumentException("a string of " + len + " bytes in a record of " + b.limit());
        }
        byte[] bytes = new byte[len];
        b.get(bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }
}
