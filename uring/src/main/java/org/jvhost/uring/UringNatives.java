package org.jvhost.uring;

import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Pointer;

/**
 * Every native call of this library (JNA direct mapping). None declares LastErrorException: they return
 * -1 (or {@link #MAP_FAILED}) and the caller reads errno with {@link #errno()}, so an io_uring_enter
 * interrupted by a signal costs no exception.
 */
final class UringNatives {
    static {
        Native.register(UringNatives.class, NativeLibrary.getInstance("c"));
    }

    static final long MAP_FAILED = -1L;
    static final int PROT_READ = 1;
    static final int PROT_WRITE = 2;
    static final int MAP_SHARED = 1;
    static final int MAP_POPULATE = 0x8000;

    static final int O_RDONLY = 0;
    static final int O_RDWR = 2;
    static final int O_CLOEXEC = 0x80000;
    static final int RWF_NOWAIT = 0x8;
    static final int EFD_NONBLOCK = 0x800;
    static final int EFD_CLOEXEC = 0x80000;

    static final int EPERM = 1;
    static final int ENOENT = 2;
    static final int EINTR = 4;
    static final int EIO = 5;
    static final int EBADF = 9;
    static final int EAGAIN = 11;
    static final int ENOMEM = 12;
    static final int EACCES = 13;
    static final int EBUSY = 16;
    static final int EEXIST = 17;
    static final int ENODEV = 19;
    static final int EINVAL = 22;
    static final int ENOSPC = 28;
    static final int ENOSYS = 38;
    static final int EOPNOTSUPP = 95;

    private UringNatives() {
    }

    /** {@code syscall(2)} with six register arguments (io_uring has no glibc wrapper); -1 and errno on failure. */
    static native long syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6);

    static native long mmap(long addr, long length, int prot, int flags, int fd, long offset);

    static native int munmap(long addr, long length);

    static native int open(String path, int flags);

    static native int close(int fd);

    static native int eventfd(int initval, int flags);

    /** preadv2(2): {@code iov} is the native address of {@code iovcnt} struct iovec; -1 and errno on failure. */
    static native long preadv2(int fd, long iov, int iovcnt, long offset, int flags);

    /** read(2) into native memory: an eventfd's 8-byte count. */
    static native long read(int fd, Pointer buf, long count);

    /** errno of the calling thread's last native call. */
    static int errno() {
        return Native.getLastError();
    }

    /**
     * The kernel's name for the errnos this library and its users (net's TAP calls) report, for messages;
     * the number for the rest.
     */
    static String errnoName(int errno) {
        switch (errno) {
            case EPERM: return "EPERM";
            case ENOENT: return "ENOENT";
            case EINTR: return "EINTR";
            case EIO: return "EIO";
            case EBADF: return "EBADF";
            case EAGAIN: return "EAGAIN";
            case ENOMEM: return "ENOMEM";
            case EACCES: return "EACCES";
            case EBUSY: return "EBUSY";
            case EEXIST: return "EEXIST";
            case ENODEV: return "ENODEV";
            case EINVAL: return "EINVAL";
            case ENOSPC: return "ENOSPC";
            case ENOSYS: return "ENOSYS";
            case EOPNOTSUPP: return "EOPNOTSUPP";
            default: return "errno " + errno;
        }
    }
}
