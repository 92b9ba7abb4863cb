package org.jvhost.engine.sys;

import java.io.IOException;

/** A system call failed. Carries the call's name and errno. */
public final class NativeException extends IOException {
    private static final long serialVersionUID = 1L;

    public static final int EINTR = 4;
    public static final int EBADF = 9;
    public static final int EAGAIN = 11;
    public static final int ENOMEM = 12;
    public static final int EACCES = 13;
    public static final int EEXIST = 17;
    public static final int EINVAL = 22;
    public static final int EPERM = 1;
    public static final int ENOENT = 2;

    private final String call;
    private final int errno;

    NativeException(String call, int errno) {
        super(call + " failed: " + describe(errno) + " (errno " + errno + ")");
        this.call = call;
        this.errno = errno;
    }

    /** The failed call, e.g. {@code mmap}. */
    public String call() {
        return call;
    }

    /** The errno value. */
    public int errno() {
        return errno;
    }

    private static String describe(int errno) {
        switch (errno) {
            case EPERM: return "operation not permitted";
            case ENOENT: return "no such file or directory";
            case EINTR: return "interrupted";
            case EBADF: return "bad file descriptor";
            case EAGAIN: return "try again";
            case ENOMEM: return "out of memory";
            case EACCES: return "permission denied";
            case EEXIST: return "exists";
            case EINVAL: return "invalid argument";
            default: return "error";
        }
    }
}
