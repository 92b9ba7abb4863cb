package org.jvhost.engine.sys;

import com.sun.jna.LastErrorException;
import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Pointer;
import java.nio.ByteBuffer;

/**
 * Every native call the engine makes, through JNA direct mapping (about 3x cheaper per call than
 * interface mapping, which matters for kick and call eventfds). The private natives throw JNA's
 * {@link LastErrorException}; the public wrappers turn it into {@link NativeException} naming the call.
 * Hot-path wrappers ({@link #eventfdWrite}, {@link #eventfdRead}) report EAGAIN as a return value.
 */
public final class LinuxSys {
    public static final int PROT_READ = 1;
    public static final int PROT_WRITE = 2;
    public static final int MAP_SHARED = 1;
    public static final int MAP_NORESERVE = 0x4000;
    public static final int MAP_POPULATE = 0x8000;

    public static final int EFD_NONBLOCK = 0x800;
    public static final int EFD_CLOEXEC = 0x80000;

    public static final int EPOLL_CLOEXEC = 0x80000;
    public static final int EPOLL_CTL_ADD = 1;
    public static final int EPOLL_CTL_DEL = 2;
    public static final int EPOLL_CTL_MOD = 3;
    public static final int EPOLLIN = 0x1;
    public static final int EPOLLOUT = 0x4;
    public static final int EPOLLERR = 0x8;
    public static final int EPOLLHUP = 0x10;
    /** {@code sizeof(struct epoll_event)} on x86-64: the struct is packed (u32 events, u64 data). */
    public static final int EPOLL_EVENT_SIZE = 12;

    public static final int MFD_CLOEXEC = 1;
    public static final int MFD_ALLOW_SEALING = 2;
    public static final int MFD_HUGETLB = 4;
    /** statfs f_type of hugetlbfs (include/uapi/linux/magic.h). */
    public static final long HUGETLBFS_MAGIC = 0x958458f6L;
    public static final long SMALL_PAGE_SIZE = 4096;
    /** sizeof(struct statfs) on 64-bit Linux is 120; f_type and f_bsize are its first two 8-byte words. */
    private static final int STATFS_SIZE = 128;
    public static final int F_DUPFD_CLOEXEC = 0x406;
    public static final int F_ADD_SEALS = 1033;
    public static final int F_GET_SEALS = 1034;
    public static final int F_SEAL_SHRINK = 0x0002;
    /** sizeof(struct stat) on x86-64: st_dev at 0, st_ino at 8, st_size at 48, each 8 bytes. */
    private static final int STAT_SIZE = 144;
    private static final int STAT_ST_INO = 8;
    private static final int STAT_ST_SIZE = 48;

    static {
        Native.register(LinuxSys.class, NativeLibrary.getInstance("c"));
    }

    private static final ThreadLocal<Memory> SCRATCH8 = ThreadLocal.withInitial(() -> new Memory(8));

    private LinuxSys() {
    }

    private static native Pointer mmap(Pointer addr, long length, int prot, int flags, int fd, long offset)
            throws LastErrorException;

    private static native int munmap(Pointer addr, long length) throws LastErrorException;

    private static native int memfd_create(String name, int flags) throws LastErrorException;

    private static native int ftruncate(int fd, long length) throws LastErrorException;

    private static native int fstat(int fd, Pointer buf) throws LastErrorException;

    private static native long labs(long value);

    private static native int eventfd(int initval, int flags) throws LastErrorException;

    private static native long read(int fd, Pointer buf, long count) throws LastErrorException;

    private static native long write(int fd, Pointer buf, long count) throws LastErrorException;

    private static native int close(int fd) throws LastErrorException;

    private static native int fcntl(int fd, int cmd, int arg) throws LastErrorException;

    private static native int fchmod(int fd, int mode) throws LastErrorException;

    private static native int fstatfs(int fd, Pointer buf) throws LastErrorException;

    private static native int epoll_create1(int flags) throws LastErrorException;

    private static native int epoll_ctl(int epfd, int op, int fd, Pointer event) throws LastErrorException;

    /** {@code events} is a native address (a long, not a Pointer: no object per wait on the worker's loop). */
    private static native int epoll_wait(int epfd, long events, int maxevents, int timeout)
            throws LastErrorException;

    /** Maps {@code length} bytes of {@code fd} from {@code offset}; returns the address. */
    public static long mmap(long length, int prot, int flags, int fd, long offset) throws NativeException {
        try {
            return Pointer.nativeValue(mmap(null, length, prot, flags, fd, offset));
        } catch (LastErrorException e) {
            throw fail("mmap", e);
        }
    }

    /** Unmaps a mapping made by {@link #mmap}. */
    public static void munmap(long address, long length) throws NativeException {
        try {
            munmap(new Pointer(address), length);
        } catch (LastErrorException e) {
            throw fail("munmap", e);
        }
    }

    /**
     * A direct {@link ByteBuffer} of {@code length} bytes ({@code <= Integer.MAX_VALUE}) at a native
     * address, in native byte order. The caller keeps the memory mapped while the buffer is used.
     */
    public static ByteBuffer buffer(long address, long length) {
        return new Pointer(address).getByteBuffer(0, length);
    }

    /** Creates an anonymous memory file (for tests and fake guests). */
    public static int memfdCreate(String name, int flags) throws NativeException {
        try {
            return memfd_create(name, flags);
        } catch (LastErrorException e) {
            throw fail("memfd_create", e);
        }
    }

    /** Sets a file's size. */
    public static void truncate(int fd, long length) throws NativeException {
        try {
            ftruncate(fd, length);
        } catch (LastErrorException e) {
            throw fail("ftruncate", e);
        }
    }

    /**
     * The page size mmap and munmap of {@code fd} work in: the file system's huge page size for a
     * hugetlbfs file (also a memfd made with MFD_HUGETLB), where mmap refuses an offset and munmap a
     * length that is not a whole number of huge pages (EINVAL; mmap silently rounds the length up);
     * {@link #SMALL_PAGE_SIZE} for any other file.
     */
    public static long mappingPageSize(int fd) throws NativeException {
        Memory buf = new Memory(STATFS_SIZE);
        try {
            fstatfs(fd, buf);
        } catch (LastErrorException e) {
            throw fail("fstatfs", e);
        }
        return (buf.getLong(0) & 0xffff_ffffL) == HUGETLBFS_MAGIC ? buf.getLong(8) : SMALL_PAGE_SIZE;
    }

    // ---- guest-memory files: size, sealing, faults ------------------------------------------------

    /**
     * The size of the file behind {@code fd} (fstat's st_size). Not lseek(SEEK_END): that moves the file
     * offset, which the front-end shares with us through the passed fd.
     */
    public static long fileSize(int fd) throws NativeException {
        return fstat(fd).getLong(STAT_ST_SIZE);
    }

    /**
     * Which file {@code fd} refers to: fstat's {@code {st_dev, st_ino}}. Two fds with equal identities
     * reach the same file, whichever process opened them.
     */
    public static long[] fileIdentity(int fd) throws NativeException {
        Memory st = fstat(fd);
        return new long[] {st.getLong(0), st.getLong(STAT_ST_INO)};
    }

    private static Memory fstat(int fd) throws NativeException {
        Memory buf = new Memory(STAT_SIZE);
        try {
            fstat(fd, buf);
        } catch (LastErrorException e) {
            throw fail("fstat", e);
        }
        return buf;
    }

    /**
     * Makes sure the file behind {@code fd} can no longer shrink, so guest memory mapped from it cannot
     * vanish under the mapping (SIGBUS): adds F_SEAL_SHRINK where the file allows it, then reads the
     * seals back.
     *
     * @return true if the file carries F_SEAL_SHRINK now (added here or by the front-end); false if it
     *         cannot be sealed (a memfd made without MFD_ALLOW_SEALING or already sealed with
     *         F_SEAL_SEAL, a hugetlbfs, tmpfs or regular file), which is not an error
     */
    public static boolean sealShrink(int fd) {
        try {
            fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK);
        } catch (LastErrorException e) {
            // EPERM (sealing not allowed or F_SEAL_SEAL set) or EINVAL (not a memfd): look at what is there
        }
        try {
            return (fcntl(fd, F_GET_SEALS, 0) & F_SEAL_SHRINK) != 0;
        } catch (LastErrorException e) {
            return false;
        }
    }

    /**
     * Throws, here and now, the {@link InternalError} HotSpot has pending for this thread if an earlier
     * access to mapped memory faulted (SIGBUS), and does nothing otherwise (about 100 ns).
     *
     * <p>HotSpot's signal handler skips the faulting load or store (a load yields garbage), records an
     * "unsafe access error" on the thread and raises it only when the thread next checks its
     * asynchronous conditions: in JDK 17 at a runtime call from Java, at an armed safepoint poll, or
     * when a native call enters Java again. Whichever comes first may lie outside the {@code try} that
     * surrounded the access (C2 inlines callbacks into the loop that calls them), for example at the
     * event loop's next epoll_wait. Every JNA call is such a point, because JNA's direct dispatch calls
     * back into Java ({@code Native.updateLastError}) after the native function returns; this method is
     * the cheapest one (libc's labs). Verified on JDK 17.0.15: after 2,000 faults in compiled code, each
     * was raised by the next JNA call; a plain JNI native ({@code StrictMath.sin}) raised none.
     */
    public static void raisePendingFault() {
        labs(0);
    }

    /** A CLOEXEC duplicate of {@code fd}, which the caller owns. */
    public static int dupCloexec(int fd) throws NativeException {
        try {
            return fcntl(fd, F_DUPFD_CLOEXEC, 0);
        } catch (LastErrorException e) {
            throw fail("fcntl(F_DUPFD_CLOEXEC)", e);
        }
    }

    /**
     * Sets the mode bits of {@code fd}'s inode. On an unbound AF_UNIX socket this is the mode its socket
     * file gets at bind (less the umask), which leaves no moment where the file is more open than that.
     */
    public static void chmodFd(int fd, int mode) throws NativeException {
        try {
            fchmod(fd, mode);
        } catch (LastErrorException e) {
            throw fail("fchmod", e);
        }
    }

    /** Creates an eventfd. */
    public static int eventfd(int flags) throws NativeException {
        try {
            return eventfd(0, flags);
        } catch (LastErrorException e) {
            throw fail("eventfd", e);
        }
    }

    /**
     * Adds {@code value} to an eventfd's counter (a kick or a call).
     *
     * @return true if written; false if the counter is full (EAGAIN on a non-blocking eventfd)
     */
    public static boolean eventfdWrite(int fd, long value) throws NativeException {
        Memory buf = SCRATCH8.get();
        buf.setLong(0, value);
        try {
            return write(fd, buf, 8) == 8;
        } catch (LastErrorException e) {
            if (e.getErrorCode() == NativeException.EAGAIN) {
                return false;
            }
            throw fail("write(eventfd)", e);
        }
    }

    /**
     * Reads and clears an eventfd's counter.
     *
     * @return the counter, or -1 if it was zero on a non-blocking eventfd (EAGAIN)
     */
    public static long eventfdRead(int fd) throws NativeException {
        Memory buf = SCRATCH8.get();
        try {
            return read(fd, buf, 8) == 8 ? buf.getLong(0) : -1;
        } catch (LastErrorException e) {
            if (e.getErrorCode() == NativeException.EAGAIN) {
                return -1;
            }
            throw fail("read(eventfd)", e);
        }
    }

    /** Reads up to {@code count} bytes into native memory; returns bytes read, or -1 on EAGAIN. */
    public static long read(int fd, long address, long count) throws NativeException {
        try {
            return read(fd, new Pointer(address), count);
        } catch (LastErrorException e) {
            if (e.getErrorCode() == NativeException.EAGAIN) {
                return -1;
            }
            throw fail("read", e);
        }
    }

    /** Writes up to {@code count} bytes from native memory; returns bytes written, or -1 on EAGAIN. */
    public static long write(int fd, long address, long count) throws NativeException {
        try {
            return write(fd, new Pointer(address), count);
        } catch (LastErrorException e) {
            if (e.getErrorCode() == NativeException.EAGAIN) {
                return -1;
            }
            throw fail("write", e);
        }
    }

    // ---- the back-end request channel: a socket the engine owns, used without ever waiting ---------

    /** {@code MSG_NOSIGNAL}: a peer that closed its end gives EPIPE, not a SIGPIPE for the process. */
    public static final int MSG_NOSIGNAL = 0x4000;

    private static native long send(int fd, Pointer buf, long len, int flags) throws LastErrorException;

    private static native long recv(int fd, Pointer buf, long len, int flags) throws LastErrorException;

    private static native int socketpair(int domain, int type, int protocol, int[] sv) throws LastErrorException;

    /**
     * A connected pair of non-blocking, CLOEXEC AF_UNIX stream sockets, both the caller's to close (a
     * test front-end's back-end request channel: plain fds, so closing one end is seen by the other).
     */
    public static int[] socketPair() throws NativeException {
        int[] sv = new int[2];
        try {
            socketpair(1, 1 | 0x80000 | 0x800, 0, sv); // AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK
            return sv;
        } catch (LastErrorException e) {
            throw fail("socketpair", e);
        }
    }

    /** {@code send(2)} without waiting or SIGPIPE: bytes sent, -1 if the socket has no room (EAGAIN). */
    public static long sendNow(int fd, long address, long count) throws NativeException {
        try {
            return send(fd, new Pointer(address), count, MSG_DONTWAIT | MSG_NOSIGNAL);
        } catch (LastErrorException e) {
            if (e.getErrorCode() == NativeException.EAGAIN || e.getErrorCode() == NativeException.EINTR) {
                return -1;
            }
            throw fail("send", e);
        }
    }

    /** {@code recv(2)} without waiting: bytes read, 0 at the end of the stream, -1 if nothing has arrived. */
    public static long receiveNow(int fd, long address, long count) throws NativeException {
        try {
            return recv(fd, new Pointer(address), count, MSG_DONTWAIT);
        } catch (LastErrorException e) {
            if (e.getErrorCode() == NativeException.EAGAIN || e.getErrorCode() == NativeException.EINTR) {
                return -1;
            }
            throw fail("recv", e);
        }
    }

    /** Closes an fd the engine owns (never one junixsocket still tracks; see the transport). */
    public static void closeFd(int fd) throws NativeException {
        try {
            close(fd);
        } catch (LastErrorException e) {
            throw fail("close", e);
        }
    }

    /** Closes an owned fd, ignoring errors (cleanup paths). */
    public static void closeQuietly(int fd) {
        if (fd >= 0) {
            try {
                close(fd);
            } catch (LastErrorException ignored) {
                // already closed or never valid: nothing left to release
            }
        }
    }

    /** Creates an epoll instance. */
    public static int epollCreate() throws NativeException {
        try {
            return epoll_create1(EPOLL_CLOEXEC);
        } catch (LastErrorException e) {
            throw fail("epoll_create1", e);
        }
    }

    /** Adds, modifies or deletes {@code fd} in epoll set {@code epfd}, with a 64-bit token. */
    public static void epollCtl(int epfd, int op, int fd, int events, long token) throws NativeException {
        Memory ev = new Memory(EPOLL_EVENT_SIZE);
        ev.setInt(0, events);
        ev.setLong(4, token);
        try {
            epoll_ctl(epfd, op, fd, ev);
        } catch (LastErrorException e) {
            throw fail("epoll_ctl", e);
        }
    }

    /**
     * Waits for events into the native buffer at {@code events} (room for {@code max}
     * {@link #EPOLL_EVENT_SIZE}-byte entries: u32 events at 0, u64 token at 4).
     *
     * @return the number of events, 0 on timeout or EINTR
     */
    public static int epollWait(int epfd, long events, int max, int timeoutMs) throws NativeException {
        try {
            return epoll_wait(epfd, events, max, timeoutMs);
        } catch (LastErrorException e) {
            if (e.getErrorCode() == NativeException.EINTR) {
                return 0; // a signal (e.g. a profiler or SIGTERM handling) interrupted the wait: just re-poll
            }
            throw fail("epoll_wait", e);
        }
    }

    // ---- the vhost-user socket: receiving fds, and socket files -----------------------------------

    public static final int MSG_CTRUNC = 0x8;
    public static final int MSG_DONTWAIT = 0x40;
    public static final int MSG_CMSG_CLOEXEC = 0x40000000;
    public static final int SOL_SOCKET = 1;
    public static final int SCM_RIGHTS = 1;
    public static final int O_PATH = 0x200000;
    public static final int O_NOFOLLOW = 0x20000;
    public static final int O_CLOEXEC = 0x80000;

    private static native long recvmsg(int fd, Pointer msg, int flags) throws LastErrorException;

    private static native int open(String path, int flags) throws LastErrorException;

    private static native int poll(Pointer fds, long nfds, int timeout) throws LastErrorException;

    private static native int geteuid();

    private static native Pointer signal(int signum, Pointer handler);

    private static native int socket(int domain, int type, int protocol) throws LastErrorException;

    private static native int bind(int fd, byte[] addr, int len) throws LastErrorException;

    private static native int listen(int fd, int backlog) throws LastErrorException;

    private static final int AF_UNIX = 1;
    private static final int SOCK_STREAM = 1;
    private static final int SOCK_CLOEXEC = 0x80000;
    /** {@code struct sockaddr_un}: {@code sa_family_t sun_family} (u16), then {@code char sun_path[108]}. */
    private static final int SUN_PATH_OFFSET = 2;
    private static final int SUN_PATH_SIZE = 108;

    /**
     * A listening AF_UNIX stream socket (CLOEXEC) bound to {@code path}, whose file is born with
     * {@code mode} less the umask: the unbound socket's inode is given {@code mode} first, and bind
     * creates the file with that mode. Our own socket/bind/listen, not junixsocket's: its bind
     * {@code chmod}s the path to 0666 right after binding, by name (which follows a symlink swapped in
     * meanwhile, and leaves the socket world-connectable until the caller narrows it). The caller owns
     * the fd (e.g. through junixsocket's {@code FileDescriptorCast.unsafeUsing}).
     *
     * @throws NativeException naming the call that failed (EADDRINUSE if the path exists)
     */
    public static int listenUnix(String path, int mode, int backlog) throws NativeException {
        byte[] name = path.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        if (name.length >= SUN_PATH_SIZE) {
            throw new NativeException("bind (a socket path of " + name.length + " bytes; sockaddr_un holds at most "
                    + (SUN_PATH_SIZE - 1) + ")", NativeException.EINVAL);
        }
        byte[] addr = new byte[SUN_PATH_OFFSET + name.length + 1]; // the path, NUL-terminated
        addr[0] = AF_UNIX; // little-endian u16
        System.arraycopy(name, 0, addr, SUN_PATH_OFFSET, name.length);
        int fd;
        try {
            fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        } catch (LastErrorException e) {
            throw fail("socket(AF_UNIX)", e);
        }
        try {
            fchmod(fd, mode);
            bind(fd, addr, addr.length);
            listen(fd, backlog);
            return fd;
        } catch (LastErrorException e) {
            closeQuietly(fd);
            throw fail("bind/listen", e);
        }
    }

    /**
     * {@code recvmsg(2)} with a {@code struct msghdr} the caller laid out at {@code msghdr}; the kernel
     * updates its {@code msg_controllen} and {@code msg_flags} there.
     *
     * @return bytes read, 0 at the end of the stream, -1 if nothing has arrived (EAGAIN, or EINTR)
     */
    public static long recvmsg(int fd, long msghdr, int flags) throws NativeException {
        try {
            return recvmsg(fd, new Pointer(msghdr), flags);
        } catch (LastErrorException e) {
            if (e.getErrorCode() == NativeException.EAGAIN || e.getErrorCode() == NativeException.EINTR) {
                return -1;
            }
            throw fail("recvmsg", e);
        }
    }

    /**
     * Opens {@code path} itself with O_PATH | O_NOFOLLOW | O_CLOEXEC: an fd naming whatever is at the path
     * now, a symlink included (it is not followed: the fd names the link). Through
     * {@code /proc/self/fd/N} that exact inode can then be inspected and changed. The caller closes it.
     */
    public static int openPathNoFollow(String path) throws NativeException {
        try {
            return open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        } catch (LastErrorException e) {
            throw fail("open(O_PATH|O_NOFOLLOW)", e);
        }
    }

    /**
     * Waits up to {@code timeoutMs} for {@code fd} to be readable (or hung up): {@code poll(2)} on one
     * {@code struct pollfd { i32 fd; i16 events; i16 revents; }}.
     *
     * @return true if it is readable (or at end of stream, or failed), false on timeout or EINTR
     */
    public static boolean awaitReadable(int fd, int timeoutMs) throws NativeException {
        try (Memory pfd = new Memory(8)) {
            pfd.setInt(0, fd);
            pfd.setShort(4, (short) EPOLLIN); // POLLIN has EPOLLIN's value
            pfd.setShort(6, (short) 0);
            return poll(pfd, 1, timeoutMs) > 0;
        } catch (LastErrorException e) {
            if (e.getErrorCode() == NativeException.EINTR) {
                return false;
            }
            throw fail("poll", e);
        }
    }

    /** This process's effective uid: the owner of the files it creates. */
    public static int effectiveUid() {
        return geteuid();
    }

    private static NativeException fail(String call, LastErrorException e) {
        return new NativeException(call, e.getErrorCode());
    }

    /**
     * Puts signal {@code signum}'s disposition back to the default. A signal ignored when the JVM started
     * (SIGHUP under nohup) stays ignored whatever handler Java registers for it; after this, a
     * registration takes.
     */
    public static void defaultSignalDisposition(int signum) {
        signal(signum, Pointer.NULL); // SIG_DFL is 0
    }
}
