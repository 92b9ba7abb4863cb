package org.jvhost.engine.server;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.UserPrincipalNotFoundException;
import java.util.EnumSet;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.newsclub.net.unix.AFUNIXServerSocketChannel;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;
import org.newsclub.net.unix.FileDescriptorCast;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The socket file a {@link Host.Mode#LISTEN} device (or the host's control socket) listens on: created with the mode and group the
 * operator asked for without ever following a symlink, and removed only while it is still the file
 * created here.
 *
 * <h2>Mode and group, race-free (Linux)</h2>
 * {@code bind(2)} creates the file with the socket inode's mode less the umask, so an {@code fchmod} of
 * the unbound socket decides the mode the file is born with: at most the owner bits here, so it is
 * never more open than asked. The socket is made and bound with our own calls
 * ({@link LinuxSys#listenUnix}): junixsocket's bind {@code chmod}s the path to 0666 by name right after
 * binding, which both opened the socket to everyone and followed a symlink swapped in meanwhile. Nothing like it exists for the group: the file gets the process's fsgid
 * (or a set-group-ID directory's group), and {@code fchown} of the socket fd only changes the sockfs
 * inode. So the group and the exact mode (the umask may have dropped bits that were asked for) are set
 * after bind, through the file's name, and {@code chmod(2)}/{@code chown(2)} by path follow symlinks: in
 * a directory others can write, the socket could be swapped for a symlink to any file between bind and
 * chmod, and jvhost (often root) would re-mode and re-group that file. The JDK's NOFOLLOW_LINKS variants
 * open the file, which a socket refuses (ENXIO). Instead the path is opened once with
 * {@code O_PATH | O_NOFOLLOW}, which opens a symlink as itself; that fd must name a socket owned by our
 * user, and the group and mode are applied to exactly that inode through {@code /proc/self/fd/N} (what
 * glibc's {@code fchmodat(AT_SYMLINK_NOFOLLOW)} does). Anything else found there is left alone.
 */
public final class SocketFile {
    private static final Logger LOG = LoggerFactory.getLogger(SocketFile.class);
    private static final int S_IFMT = 0170000;
    private static final int S_IFSOCK = 0140000;
    /** Front-ends that may wait to be accepted (junixsocket's default). */
    private static final int BACKLOG = 50;

    private final Path path;
    private final AFUNIXServerSocketChannel channel;
    /** The identity of the file created, so {@link #delete()} never removes a successor's file. */
    private final Object key;

    private SocketFile(Path path, AFUNIXServerSocketChannel channel, Object key) {
        this.path = path;
        this.channel = channel;
        this.key = key;
    }

    /**
     * Creates the socket file {@code path} with {@code access}'s mode and group and listens on it. An
     * existing socket file is replaced only if nothing answers on it (a stale socket left by a crashed
     * daemon); a live one means another back-end serves this path, and anything but a socket is left
     * alone. Errors name the path.
     */
    public static SocketFile listen(Path path, SocketAccess access) throws IOException {
        AFUNIXServerSocketChannel channel = bind(path, access);
        try {
            return new SocketFile(path, channel, applyAccess(path, access));
        } catch (IOException e) {
            channel.close();
            throw e;
        }
    }

    /**
     * A hot upgrade: the socket listening on {@code path} was handed over by the previous process; the
     * file there (made by that process) is ours to remove from now on, if it is still the same file.
     */
    public static SocketFile adopt(Path path, AFUNIXServerSocketChannel channel) throws IOException {
        Object key = Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).fileKey();
        return new SocketFile(path, channel, key);
    }

    /** The listening socket. */
    public AFUNIXServerSocketChannel channel() {
        return channel;
    }

    /** Removes the file if it is still the one created here (a successor may have replaced it). */
    public void delete() {
        try {
            Object now = Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).fileKey();
            if (Objects.equals(now, key)) {
                Files.delete(path);
            }
        } catch (IOException e) {
            LOG.debug("socket file {} already gone: {}", path, e.getMessage());
        }
    }

    private static AFUNIXServerSocketChannel bind(Path path, SocketAccess access) throws IOException {
        AFUNIXSocketAddress addr = AFUNIXSocketAddress.of(path);
        if (Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
            if (!isSocket(path)) {
                throw new IOException(path + ": exists and is not a socket; not replacing it");
            }
            if (answers(addr)) {
                throw new IOException(path + ": another process is listening on this socket");
            }
            LOG.info("{}: replacing stale socket file", path);
            Files.delete(path);
        }
        int fd;
        try {
            // born with at most the owner bits (see the class comment); not junixsocket's bind, which
            // chmods the path to 0666 by name right after binding
            fd = LinuxSys.listenUnix(path.toString(), access.mode() & ~0077, BACKLOG);
        } catch (NativeException e) {
            throw new IOException(path + ": cannot listen: " + e.getMessage(), e);
        }
        try {
            AFUNIXServerSocketChannel s = FileDescriptorCast.unsafeUsing(fd).as(AFUNIXServerSocketChannel.class);
            s.setDeleteOnClose(false); // delete() removes the file, only if it is still the one made here
            return s;
        } catch (IOException | RuntimeException e) {
            LinuxSys.closeQuietly(fd);
            throw new IOException(path + ": cannot listen: " + e.getMessage(), e);
        }
    }

    /**
     * Sets the group, then the exact mode, of the socket file at {@code path} without following a
     * symlink (see the class comment); returns the file's key. If they cannot be set the socket file is
     * removed; another file found in its place is left alone.
     */
    private static Object applyAccess(Path path, SocketAccess access) throws IOException {
        int fd;
        try {
            fd = LinuxSys.openPathNoFollow(path.toString());
        } catch (NativeException e) {
            throw new IOException(path + ": the socket file is gone right after bind: " + e.getMessage(), e);
        }
        try {
            Path self = Path.of("/proc/self/fd/" + fd);
            // followed, the magic link leads to the inode opened (a symlink there shows as one)
            Map<String, Object> a = Files.readAttributes(self, "unix:mode,uid");
            int mode = (Integer) a.get("mode");
            if ((mode & S_IFMT) != S_IFSOCK || (Integer) a.get("uid") != LinuxSys.effectiveUid()) {
                throw new IOException(path + ": replaced by another file (mode 0" + Integer.toOctalString(mode)
                        + ", uid " + a.get("uid") + ") right after bind; not touching it");
            }
            Object key = Files.readAttributes(self, BasicFileAttributes.class).fileKey();
            try {
                setGroupAndMode(self, path, access);
            } catch (IOException e) {
                new SocketFile(path, null, key).delete();
                throw e;
            }
            return key;
        } finally {
            LinuxSys.closeQuietly(fd);
        }
    }

    /** Through {@code self}, a /proc/self/fd link to the socket's inode; errors name {@code path}. */
    private static void setGroupAndMode(Path self, Path path, SocketAccess access) throws IOException {
        PosixFileAttributeView view = Files.getFileAttributeView(self, PosixFileAttributeView.class);
        if (access.group() != null) {
            try {
                GroupPrincipal g = FileSystems.getDefault().getUserPrincipalLookupService()
                        .lookupPrincipalByGroupName(access.group());
                view.setGroup(g);
            } catch (IOException e) {
                throw new IOException(path + ": cannot give the socket to group " + access.group() + ": "
                        + describe(e), e);
            }
        }
        try {
            view.setPermissions(permissions(access.mode()));
        } catch (IOException e) {
            throw new IOException(path + ": cannot set socket mode 0" + Integer.toOctalString(access.mode())
                    + ": " + describe(e), e);
        }
    }

    /** The failure in words, without Java class names: the message names the path already. */
    private static String describe(IOException e) {
        if (e instanceof UserPrincipalNotFoundException) {
            return "no such group on this system; create it (groupadd NAME) or name an existing group";
        }
        if (e instanceof AccessDeniedException) {
            return "permission denied";
        }
        if (e instanceof FileSystemException f && f.getReason() != null) {
            return f.getReason();
        }
        return e.getMessage() != null ? e.getMessage() : "I/O error";
    }

    static Set<PosixFilePermission> permissions(int mode) {
        Set<PosixFilePermission> set = EnumSet.noneOf(PosixFilePermission.class);
        PosixFilePermission[] bits = {
            PosixFilePermission.OTHERS_EXECUTE, PosixFilePermission.OTHERS_WRITE, PosixFilePermission.OTHERS_READ,
            PosixFilePermission.GROUP_EXECUTE, PosixFilePermission.GROUP_WRITE, PosixFilePermission.GROUP_READ,
            PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.OWNER_WRITE, PosixFilePermission.OWNER_READ,
        };
        for (int i = 0; i < bits.length; i++) {
            if ((mode & (1 << i)) != 0) {
                set.add(bits[i]);
            }
        }
        return set;
    }

    private static boolean isSocket(Path path) throws IOException {
        Object mode = Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
        return mode instanceof Integer && (((Integer) mode) & S_IFMT) == S_IFSOCK;
    }

    private static boolean answers(AFUNIXSocketAddress addr) {
        try (AFUNIXSocket probe = AFUNIXSocket.connectTo(addr)) {
            return true;
        } catch (IOException e) {
            return false;
        }
    }
}
