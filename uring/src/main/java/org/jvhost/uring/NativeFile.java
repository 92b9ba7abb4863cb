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

    /** Closes {@code fd}; an error is ignored (the descriptor is released either way). */
    public static void close(int fd) {
        UringNatives.close(fd);
    }
}
