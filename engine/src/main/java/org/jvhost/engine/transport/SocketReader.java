package org.jvhost.engine.transport;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import org.jvhost.engine.protocol.MessageHeader;
import org.jvhost.engine.sys.LinuxSys;

/**
 * Reads a vhost-user socket with our own {@code recvmsg(2)}, taking every fd the kernel hands over.
 *
 * <p>Why not junixsocket's read: its control buffer is clamped to 256 bytes (60 fds). A message with
 * more makes the kernel install 60 fds and set MSG_CTRUNC, which junixsocket turns into ENOBUFS without
 * ever recording those 60 fds: they leak, 60 per message, until the process reaches RLIMIT_NOFILE.
 * Here the control buffer holds the kernel's SCM_MAX_FD (253), the most one {@code sendmsg} can carry,
 * and an AF_UNIX stream read never returns the fds of two sends at once (the kernel stops the read after
 * the first segment that carried fds). So every fd the kernel installs lands in {@link #fds}, which the
 * caller takes or closes. junixsocket still owns the socket itself (writes, close) and never sees these
 * fds, so nothing is tracked twice; they arrive CLOEXEC (MSG_CMSG_CLOEXEC) and are ours to close.
 *
 * <p>The native scratch area, one per connection:
 * <pre>
 *   0  struct msghdr (56)   name 0 | namelen 0 | iov -&gt; 56 | iovlen 1 | control -&gt; 72 | controllen | flags
 *  56  struct iovec  (16)   base -&gt; DATA | len
 *  72  control     (1032)   cmsghdr { u64 len, i32 level, i32 type } + up to 253 x i32 fd
 * 1104 data        (4096)   the bytes read, copied out into the caller's buffer
 * </pre>
 */
final class SocketReader implements AutoCloseable {
    /** The kernel's SCM_MAX_FD: the most fds one {@code sendmsg} can attach. */
    private static final int SCM_MAX_FD = 253;
    private static final int CMSG_HEADER = 16;
    private static final int MSGHDR_IOV = 16;
    private static final int MSGHDR_IOVLEN = 24;
    private static final int MSGHDR_CONTROL = 32;
    private static final int MSGHDR_CONTROLLEN = 40;
    private static final int MSGHDR_FLAGS = 48;
    private static final int IOV = 56;
    private static final int CONTROL = IOV + 16;
    private static final int CONTROL_SIZE = CMSG_HEADER + align8(SCM_MAX_FD * Integer.BYTES);
    private static final int DATA = CONTROL + CONTROL_SIZE;
    private static final int DATA_SIZE = MessageHeader.MAX_PAYLOAD;

    private final int fd;
    private final Memory scratch = new Memory(DATA + DATA_SIZE);
    private final ByteBuffer data = scratch.getByteBuffer(DATA, DATA_SIZE);
    private int[] fds = new int[0];
    private boolean closed;

    /** Reads from socket {@code fd}, which the caller keeps open while this reader is used. */
    SocketReader(int fd) {
        this.fd = fd;
    }

    /**
     * Reads what has arrived, at most {@code dst.remaining()} bytes, without blocking; the fds that came
     * with them are added to {@link #fdCount()}.
     *
     * @return bytes read, 0 if nothing has arrived, -1 at the end of the stream
     * @throws IOException on a socket error, or if the kernel dropped fds of the message (MSG_CTRUNC:
     *                     this process is out of fds); the fds received so far stay here to be closed
     */
    int read(ByteBuffer dst) throws IOException {
        if (closed) {
            throw new IOException("read from a closed connection");
        }
        int want = Math.min(dst.remaining(), DATA_SIZE);
        scratch.clear(CONTROL); // msghdr and iovec: no name, flags 0
        scratch.setLong(MSGHDR_IOV, address(IOV));
        scratch.setLong(MSGHDR_IOVLEN, 1);
        scratch.setLong(MSGHDR_CONTROL, address(CONTROL));
        scratch.setLong(MSGHDR_CONTROLLEN, CONTROL_SIZE);
        scratch.setLong(IOV, address(DATA));
        scratch.setLong(IOV + 8, want);
        long r = LinuxSys.recvmsg(fd, address(0), LinuxSys.MSG_DONTWAIT | LinuxSys.MSG_CMSG_CLOEXEC);
        if (r < 0) {
            return 0;
        }
        int taken = takeRights();
        if ((scratch.getInt(MSGHDR_FLAGS) & LinuxSys.MSG_CTRUNC) != 0) {
            throw new IOException("the kernel dropped fds sent with the message (MSG_CTRUNC) after installing "
                    + taken + ": this process is out of file descriptors");
        }
        if (r == 0) {
            return -1;
        }
        dst.put(data.clear().limit((int) r));
        return (int) r;
    }

    /** The fds received since the last {@link #takeFds()} or {@link #closeFds()}. */
    int fdCount() {
        return fds.length;
    }

    /** Hands the received fds to the caller, who must close them. */
    int[] takeFds() {
        int[] taken = fds;
        fds = new int[0];
        return taken;
    }

    /** Closes the received fds not taken. */
    void closeFds() {
        for (int f : fds) {
            LinuxSys.closeQuietly(f);
        }
        fds = new int[0];
    }

    /** Closes the fds not taken and frees the scratch area. Idempotent; the socket is the caller's. */
    @Override
    public void close() {
        closeFds();
        if (!closed) {
            closed = true;
            scratch.close();
        }
    }

    /** Appends the fds of every SCM_RIGHTS message in the control data; returns how many. */
    private int takeRights() {
        long used = Math.min(scratch.getLong(MSGHDR_CONTROLLEN), CONTROL_SIZE);
        int taken = 0;
        long off = 0;
        while (off + CMSG_HEADER <= used) {
            long len = scratch.getLong(CONTROL + off);
            if (len < CMSG_HEADER || off + len > used) {
                break;
            }
            if (scratch.getInt(CONTROL + off + 8) == LinuxSys.SOL_SOCKET
                    && scratch.getInt(CONTROL + off + 12) == LinuxSys.SCM_RIGHTS) {
                int n = (int) ((len - CMSG_HEADER) / Integer.BYTES);
                int base = fds.length;
                fds = Arrays.copyOf(fds, base + n);
                for (int i = 0; i < n; i++) {
                    fds[base + i] = scratch.getInt(CONTROL + off + CMSG_HEADER + (long) i * Integer.BYTES);
                }
                taken += n;
            }
            off += align8(len);
        }
        return taken;
    }

    private long address(long offset) {
        return Pointer.nativeValue(scratch) + offset;
    }

    private static int align8(long n) {
        return (int) ((n + 7) & ~7L);
    }
}
