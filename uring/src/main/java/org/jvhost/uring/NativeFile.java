package org.jvhost.uring;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The file descriptor of a file, for the reads and writes a ring runs on it (a {@code FileChannel}
 * does not give its own). Opened close-on-exec; the caller closes it.
 */
public final class NativeFile {
    private NativeFile() {
    }

    /** Opens {@code path} read-only or for reading and writing; the error names the path and errno. */
    public static int open(Path path, boolean writable) throws IOException {
        int fd = UringNatives.open(path.toString(),
                (writable ? UringNatives.O_RDWR : UringNatives.O_RDONLY) | UringNatives.O_CLOEXEC);
        if (fd < 0) {
            throw new IOException(path + ": open failed (" + UringNatives.errnoName(UringNatives.errno()) + ")");
        }
        return fd;
    }

    /**
     * Reads into {@code count} iovecs at native address {@code iovecs} from file {@code offset}, only as
     * far as the page cache holds the data (preadv2 with RWF_NOWAIT: the kernel returns what it has, or
     * EAGAIN, rather than wait for the disk). Never blocks on the disk.
     *
     * @return the bytes read (short or 0 where the cache ends), or -errno (EAGAIN: nothing cached;
     *         EOPNOTSUPP: the file system cannot tell)
     */
    public static long readCached(int fd, long iovecs, int count, long offset) {
        long r = UringNatives.preadv2(fd, iovecs, count, offset, UringNatives.RWF_NOWAIT);
        return r < 0 ? -UringNatives.errno() : r;
    }

    /** Closes {@code fd}; an error is ignored (the descriptor is released either way). */
    public static void close(int fd) {
        UringNatives.close(fd);
    }
}
