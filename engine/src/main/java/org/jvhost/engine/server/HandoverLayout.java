package org.jvhost.engine.server;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.jvhost.engine.transport.RecordLink;

/**
 * The hot-upgrade handover, version {@value #VERSION}: what the running jvhost (old) and its successor
 * (new) say over the private handover socket. Each record is framed by {@link RecordLink} (type, body
 * length, fd count, then the body, fds by SCM_RIGHTS); integers are u32 little-endian, strings
 * {@code u32 length + UTF-8}. Two phases, so that the rings stand still only for the second:
 *
 * <pre>
 *  new -&gt; old  HELLO    | version | pid |
 *  ---- phase 1: old froze every connection (nothing read from it), its rings run on ----
 *  old -&gt; new  DEVICE   | flags | name |                          fds: [listener] [connection if F_EARLY]
 *               STATE    | version | format | data ...           fds: the device's resources (F_EARLY)
 *               REQUEST  | vhost-user header (12) | payload |     fds: the request's (at most 8)
 *               ...      (STATE and REQUESTs: an F_EARLY device's resources and image but ring positions)
 *               SERVICE  | name |                                fds: [listening socket]
 *               PREPARED | devices |
 *  new -&gt; old  READY    | pid |          or   REFUSE | reason |    (new created its devices if it could)
 *  ---- phase 2: old paused every ring ----
 *  old -&gt; new  RINGS    | flags | name |                          fds: [connection if F_CONNECTION]
 *               STATE    | version | format | data ...           fds: the device state's (at most 8)
 *               REQUEST  ...   (ring positions and starts; the whole image for an F_LATE device's connection)
 *               ...
 *               END      | devices |
 *  new -&gt; old  ACK      | pid |          or   REFUSE | reason |
 *  new closes the link once its rings run (old exits then, or 2 s after the ACK at the latest)
 *  old -&gt; new  REFUSE   | reason |       (instead of DEVICE..PREPARED: the old one cannot freeze)
 * </pre>
 *
 * DEVICE flags: {@link #F_LISTENER} (a listening socket fd comes first), {@link #F_CONNECTION} (the live
 * vhost-user connection's fd follows), {@link #F_EARLY} (the device saved its resources: the new process
 * creates it and sets its connection up before the pause), {@link #F_LATE} (a connection whose device saved
 * no resources: it may come in phase 2, so the new process creates every device only after phase 2; the
 * gap then covers that). A device's REQUESTs are its connection's {@link
 * org.jvhost.engine.session.SessionImage}: the new process replays them into a fresh session. The old
 * process keeps its connections frozen, and from phase 2 its rings paused, until ACK (it then exits 0) or
 * until the link fails or REFUSE comes (it then resumes them and keeps serving). The new process reads no
 * socket and starts no ring before it has sent ACK.
 */
public final class HandoverLayout {
    public static final int VERSION = 2;

    public static final int HELLO = 1;
    public static final int DEVICE = 2;
    public static final int REQUEST = 3;
    public static final int STATE = 4;
    public static final int SERVICE = 5;
    public static final int END = 6;
    public static final int ACK = 7;
    public static final int REFUSE = 8;
    public static final int PREPARED = 9;
    public static final int READY = 10;
    public static final int RINGS = 11;

    public static final int F_LISTENER = 1;
    public static final int F_CONNECTION = 2;
    public static final int F_EARLY = 4;
    public static final int F_LATE = 8;

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
