package org.jvhost.host;

import com.sun.jna.LastErrorException;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import java.io.FileInputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * This process out of file descriptors, for as long as the instance is open: the soft RLIMIT_NOFILE is
 * lowered and every free descriptor below it is taken, except {@code spare}. {@link #close()} gives them
 * back and restores the limit. Every thread of the JVM is affected, so keep the window short and do
 * what loads classes (the first request, the first log line) before.
 */
public final class FdLimit implements AutoCloseable {
    private static final int RLIMIT_NOFILE = 7; // x86-64 and aarch64 Linux
    private static final int MAX_FILLERS = 100_000;

    private final long[] saved = new long[2];
    private final List<FileInputStream> fillers = new ArrayList<>();

    private FdLimit(int spare) throws IOException {
        LibC.getrlimit(RLIMIT_NOFILE, saved);
        long open;
        try (var fds = java.nio.file.Files.list(java.nio.file.Path.of("/proc/self/fd"))) {
            open = fds.count();
        }
        LibC.setrlimit(RLIMIT_NOFILE, new long[] {Math.min(saved[0], open + 64), saved[1]});
        try {
            while (fillers.size() < MAX_FILLERS) {
                fillers.add(new FileInputStream("/dev/null"));
            }
            throw new IllegalStateException("the fd limit was not reached after " + MAX_FILLERS + " files");
        } catch (IOException full) {
            // the limit is reached: give back the spares
            for (int i = 0; i < spare && !fillers.isEmpty(); i++) {
                fillers.remove(fillers.size() - 1).close();
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** Takes every free descriptor but {@code spare}. */
    public static FdLimit exhausted(int spare) throws IOException {
        return new FdLimit(spare);
    }

    @Override
    public void close() throws IOException {
        for (FileInputStream f : fillers) {
            f.close();
        }
        fillers.clear();
        LibC.setrlimit(RLIMIT_NOFILE, saved);
    }

    /** {@code getrlimit(2)}/{@code setrlimit(2)}; {@code rlimit} is {@code {rlim_cur, rlim_max}}. */
    private static final class LibC {
        static {
            Native.register(NativeLibrary.getInstance("c"));
        }

        static native int getrlimit(int resource, long[] rlimit) throws LastErrorException;

        static native int setrlimit(int resource, long[] rlimit) throws LastErrorException;
    }
}
