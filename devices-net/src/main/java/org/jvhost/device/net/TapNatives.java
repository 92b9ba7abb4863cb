package org.jvhost.device.net;

import com.sun.jna.LastErrorException;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Pointer;
import org.jvhost.uring.IoUring;

/**
 * Every native call of the net device (JNA direct mapping, java-stack §2). Set-up calls declare
 * {@link LastErrorException}; the data-path calls ({@link #readv}, {@link #writev}) do not, because a
 * TAP that is drained answers EAGAIN on every read and an exception per drain is not acceptable: they
 * return -1 and the caller reads errno with {@link #errno()}.
 */
final class TapNatives {
    static {
        Native.register(TapNatives.class, NativeLibrary.getInstance("c"));
    }

    static final int O_RDWR = 2;
    static final int O_NONBLOCK = 0x800;
    static final int O_CLOEXEC = 0x80000;
    static final int F_GETFL = 3;
    static final int F_SETFL = 4;
    static final int F_DUPFD_CLOEXEC = 1030;

    static final int EPERM = 1;
    static final int ENOENT = 2;
    static final int EIO = 5;
    static final int EBADF = 9;
    static final int EAGAIN = 11;
    static final int EACCES = 13;
    static final int EBUSY = 16;
    static final int EEXIST = 17;
    static final int ENODEV = 19;
    static final int EINVAL = 22;
    static final int EINTR = 4;
    static final int ENOMEM = 12;
    static final int ENOSYS = 38;
    static final int EOPNOTSUPP = 95;

    /** {@code _IOW('T', 202, int)}: attach the fd to a TAP by name, creating it if absent. */
    static final long TUNSETIFF = 0x400454caL;
    /** {@code _IOR('T', 210, unsigned int)}: the name and flags of the TAP an fd is attached to. */
    static final long TUNGETIFF = 0x800454d2L;
    /** {@code _IOR('T', 207, unsigned int)}: the IFF_* flags this kernel's tun driver supports. */
    static final long TUNGETFEATURES = 0x800454cfL;
    /** {@code _IOW('T', 208, unsigned int)}: the TUN_F_* offloads the reader accepts (a value). */
    static final long TUNSETOFFLOAD = 0x400454d0L;
    /** {@code _IOW('T', 216, int)}: the length of the virtio-net header on each frame. */
    static final long TUNSETVNETHDRSZ = 0x400454d8L;

    /** {@code _IOW('T', 217, int)}: attach or detach this fd's queue of a multi-queue TAP (ifreq*). */
    static final long TUNSETQUEUE = 0x400454d9L;

    static final int IFF_TAP = 0x2;
    static final int IFF_ATTACH_QUEUE = 0x200;
    static final int IFF_DETACH_QUEUE = 0x400;
    static final int IFF_MULTI_QUEUE = 0x100;
    static final int IFF_NO_PI = 0x1000;
    static final int IFF_VNET_HDR = 0x4000;

    /** {@code struct ifreq}: name[16] at 0, {@code short ifr_flags} at 16, 40 bytes in all. */
    static final int IFREQ_SIZE = 40;
    static final int IFREQ_FLAGS = 16;
    /** IFNAMSIZ, including the terminating NUL. */
    static final int IFNAMSIZ = 16;

    /** The most segments one readv/writev takes (UIO_MAXIOV). */
    static final int IOV_MAX = 1024;
    /** {@code struct iovec}: base pointer, then length; 16 bytes on LP64. */
    static final int IOVEC_SIZE = 16;

    private TapNatives() {
    }

    static native int open(String path, int flags) throws LastErrorException;

    static native int close(int fd) throws LastErrorException;

    static native int fcntl(int fd, int cmd, int arg) throws LastErrorException;

    static native int ioctl(int fd, long request, Pointer arg) throws LastErrorException;

    static native int ioctl(int fd, long request, long arg) throws LastErrorException;

    /** {@code iov} is the native address of an iovec array. Returns bytes or -1; see {@link #errno()}. */
    static native long readv(int fd, long iov, int iovcnt);

    /** {@code iov} is the native address of an iovec array. Returns bytes or -1; see {@link #errno()}. */
    static native long writev(int fd, long iov, int iovcnt);

    /** memmove(3) between native addresses (a frame moved inside guest memory); returns {@code dst}. */
    static native long memmove(long dst, long src, long n);

    /** The native address of entry {@code entry} of the iovec array at {@code iov}. */
    static long iovecAt(long iov, int entry) {
        return iov + (long) entry * IOVEC_SIZE;
    }

    /** errno of the calling thread's last native call that did not declare LastErrorException. */
    static int errno() {
        return Native.getLastError();
    }

    /** The kernel's name for an errno we may report, for messages (the uring library's one list). */
    static String errnoName(int errno) {
        return IoUring.errnoName(errno);
    }
}
