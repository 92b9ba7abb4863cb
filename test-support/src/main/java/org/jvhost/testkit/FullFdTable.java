package org.jvhost.testkit;

import com.sun.jna.LastErrorException;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;

/**
 * This process at RLIMIT_NOFILE, for tests of what a server does when {@code accept}, {@code recvmsg}
 * or {@code open} fail with EMFILE. The soft limit drops to just above the highest open fd (setrlimit;
 * the hard limit stays, so it can be raised again) and every free slot below it gets an eventfd;
 * {@link #close()} frees them and restores the limit.
 *
 * <p>While the table is full nothing in this JVM can open a file, and that includes loading a class from a
 * {@code target/classes} directory: {@link #preload} the classes the code under test will need first.
 * A client socket to connect meanwhile must be made before ({@link #unconnectedSocket()}), since
 * junixsocket's connect opens a helper socket of its own.
 */
public final class FullFdTable implements AutoCloseable {
    private static final int RLIMIT_NOFILE = 7;
    private static final int EMFILE = 24;
    private static final int AF_UNIX = 1;
    private static final int SOCK_STREAM = 1;
    private static final int SOCK_CLOEXEC = 0x80000;
    private static final int SOCKADDR_UN_SIZE = 110;

    static {
        Native.register(FullFdTable.class, NativeLibrary.getInstance("c"));
    }

    private static native int getrlimit(int resource, long[] rlim) throws LastErrorException;

    private static native int setrlimit(int resource, long[] rlim) throws LastErrorException;

    private static native int socket(int domain, int type, int protocol) throws LastErrorException;

    private static native int connect(int fd, byte[] sockaddr, int length) throws LastErrorException;

    private final long[] saved;
    private final List<Integer> filler = new ArrayList<>();

    private FullFdTable(long[] saved) {
        this.saved = saved;
    }

    /** Lowers the soft fd limit to just above the highest open fd and fills every free slot below it. */
    public static FullFdTable fill() throws IOException {
        preload(NativeException.class.getName());
        long[] lim = new long[2];
        getrlimit(RLIMIT_NOFILE, lim);
        FullFdTable t = new FullFdTable(lim.clone());
        long soft = Math.min(lim[0], highestOpenFd() + 16);
        setrlimit(RLIMIT_NOFILE, new long[] {soft, lim[1]});
        try {
            while (t.filler.size() <= soft) {
                t.filler.add(LinuxSys.eventfd(LinuxSys.EFD_CLOEXEC));
            }
        } catch (NativeException e) {
            if (e.errno() == EMFILE) {
                return t;
            }
            t.close();
            throw e;
        }
        t.close();
        throw new IOException("the soft limit of " + soft + " fds was not reached");
    }

    /** Frees the fds and restores the limit. Idempotent. */
    @Override
    public void close() {
        filler.forEach(LinuxSys::closeQuietly);
        filler.clear();
        setrlimit(RLIMIT_NOFILE, saved);
    }

    /** Loads classes now, while files can still be opened. */
    public static void preload(String... classNames) {
        for (String name : classNames) {
            try {
                Class.forName(name);
            } catch (ClassNotFoundException e) {
                throw new IllegalArgumentException("no class " + name, e);
            }
        }
    }

    /** A stream socket (CLOEXEC) made now, to {@link #connect} while the table is full; the caller owns it. */
    public static int unconnectedSocket() {
        return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    }

    /** Connects socket {@code fd} to {@code path}: needs no new fd. */
    public static void connect(int fd, Path path) {
        byte[] p = path.toString().getBytes(StandardCharsets.UTF_8);
        byte[] addr = new byte[SOCKADDR_UN_SIZE]; // struct sockaddr_un: u16 family, NUL-terminated path
        addr[0] = AF_UNIX;
        System.arraycopy(p, 0, addr, 2, p.length);
        connect(fd, addr, SOCKADDR_UN_SIZE);
    }

    private static long highestOpenFd() {
        String[] fds = new File("/proc/self/fd").list();
        long max = 0;
        for (String fd : fds == null ? new String[0] : fds) {
            max = Math.max(max, Long.parseLong(fd));
        }
        return max;
    }
}
