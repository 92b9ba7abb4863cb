package org.jvhost.host.it;

import com.sun.jna.LastErrorException;
import com.sun.jna.Library;
import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * A privileged launcher, as libvirt is for QEMU, for {@code tapfd=}: its own process (a {@code main}),
 * because Java's {@link ProcessBuilder} closes every fd above 2 in the child, so the test JVM cannot hand
 * fds down itself. It opens {@code /dev/net/tun} once per queue, without {@code O_CLOEXEC}, attaches each
 * fd to TAP {@code NAME} with TUNSETIFF ({@code IFF_TAP | IFF_NO_PI | IFF_VNET_HDR}, plus
 * {@code IFF_MULTI_QUEUE} for more than one queue), which creates the TAP in the launcher's network
 * namespace (the test starts it under {@code ip netns exec}), prints
 * {@code TAPFD tap=NAME ifindex=I fds=N[:M...]}, and then execs the command in its own process: the
 * command (jvhost) keeps the pid, stdout and stderr the test watches, and inherits the TAP fds and
 * nothing else of the launcher (every other fd above 2 is marked close-on-exec first).
 * Every {@value #FDS} in the command's arguments becomes the fds, colon-separated ({@code tapfd=}'s syntax).
 * The TAP is not persistent: it lives as long as the fds, i.e. as long as jvhost keeps them.
 *
 * <p>Usage: {@code java -cp JNA:TEST_CLASSES org.jvhost.host.it.TapFdLauncher NAME QUEUES /abs/program ARGS...};
 * exits 3 (before the exec) if a step fails, saying which.
 */
public final class TapFdLauncher {
    /** Replaced by the opened fds in the command's arguments. */
    public static final String FDS = "{tapfds}";

    private static final int O_RDWR = 2;
    private static final int F_SETFD = 2;
    private static final int FD_CLOEXEC = 1;
    private static final int SIG_SETMASK = 2;
    /** {@code _IOW('T', 202, int)} (linux/if_tun.h). */
    private static final long TUNSETIFF = 0x400454caL;
    private static final int IFF_TAP = 0x2;
    private static final int IFF_MULTI_QUEUE = 0x100;
    private static final int IFF_NO_PI = 0x1000;
    private static final int IFF_VNET_HDR = 0x4000;
    /** {@code struct ifreq}: name[16], then {@code short ifr_flags}; 40 bytes in all. */
    private static final int IFREQ_SIZE = 40;
    private static final int IFREQ_FLAGS = 16;

    /** Interface mapping: direct mapping cannot pass {@code execv}'s NULL-terminated {@code char *argv[]}. */
    private interface LibC extends Library {
        LibC C = Native.load("c", LibC.class);

        int open(String path, int flags) throws LastErrorException;

        int ioctl(int fd, long request, Pointer arg) throws LastErrorException;

        int fcntl(int fd, int cmd, int arg) throws LastErrorException;

        /** Returns the error number instead of setting errno. */
        int pthread_sigmask(int how, Pointer set, Pointer oldSet);

        int execv(String path, String[] argv) throws LastErrorException;
    }

    private TapFdLauncher() {
    }

    public static void main(String[] args) {
        if (args.length < 3) {
            fail("usage: TapFdLauncher NAME QUEUES /abs/program [ARGS...]");
        }
        String name = args[0];
        int queues = Integer.parseInt(args[1]);
        int[] fds = new int[queues];
        for (int q = 0; q < queues; q++) {
            fds[q] = openQueue(name, queues);
        }
        String joined = Arrays.stream(fds).mapToObj(String::valueOf).collect(Collectors.joining(":"));
        String ifindex = read(Path.of("/sys/class/net", name, "ifindex"));
        System.out.println("TAPFD tap=" + name + " ifindex=" + ifindex + " fds=" + joined);
        System.out.flush();
        String[] argv = Arrays.stream(args, 2, args.length).map(a -> a.replace(FDS, joined)).toArray(String[]::new);
        exec(argv, fds);
    }

    /** One queue fd of TAP {@code name}, created by the first call (tuntap.rst, "Multiqueue tuntap interface"). */
    private static int openQueue(String name, int queues) {
        int fd;
        try {
            fd = LibC.C.open("/dev/net/tun", O_RDWR);
        } catch (LastErrorException e) {
            return fail("cannot open /dev/net/tun: errno " + e.getErrorCode());
        }
        Memory ifr = new Memory(IFREQ_SIZE);
        ifr.clear();
        byte[] bytes = name.getBytes(StandardCharsets.US_ASCII);
        ifr.write(0, bytes, 0, bytes.length);
        ifr.setShort(IFREQ_FLAGS, (short) (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (queues > 1 ? IFF_MULTI_QUEUE : 0)));
        try {
            LibC.C.ioctl(fd, TUNSETIFF, ifr);
        } catch (LastErrorException e) {
            return fail("TUNSETIFF " + name + " on fd " + fd + ": errno " + e.getErrorCode());
        }
        return fd;
    }

    /**
     * Marks every fd above 2 but the TAP's close-on-exec (the launcher's JVM leaves jars and the like
     * open without it), clears the signal mask (a Java thread blocks SIGQUIT, and exec keeps the
     * mask), and replaces this process with {@code argv}.
     */
    private static void exec(String[] argv, int[] keep) {
        List<Integer> others = new ArrayList<>();
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            fds.map(p -> Integer.parseInt(p.getFileName().toString()))
                    .filter(fd -> fd > 2 && Arrays.stream(keep).noneMatch(k -> k == fd)).forEach(others::add);
        } catch (IOException e) {
            fail("cannot list /proc/self/fd: " + e);
        }
        for (int fd : others) {
            try {
                LibC.C.fcntl(fd, F_SETFD, FD_CLOEXEC);
            } catch (LastErrorException e) {
                // the directory stream's own fd, closed since the listing
            }
        }
        Memory empty = new Memory(128); // sizeof(sigset_t)
        empty.clear();
        int err = LibC.C.pthread_sigmask(SIG_SETMASK, empty, null);
        if (err != 0) {
            fail("pthread_sigmask: errno " + err);
        }
        try {
            LibC.C.execv(argv[0], argv);
        } catch (LastErrorException e) {
            fail("execv " + argv[0] + ": errno " + e.getErrorCode());
        }
    }

    private static String read(Path file) {
        try {
            return Files.readString(file).trim();
        } catch (IOException e) {
            return fail("cannot read " + file + ": " + e);
        }
    }

    private static <T> T fail(String why) {
        System.err.println("TapFdLauncher: " + why);
        System.exit(3);
        throw new AssertionError(why);
    }

    /**
     * {@code java -cp JNA:TEST_CLASSES TapFdLauncher NAME QUEUES}: the prefix of the launched command. No
     * perf-data file: a JVM that execs never gets to delete it.
     */
    static List<String> command(String name, int queues) {
        return List.of(Serve.java(), "-XX:-UsePerfData", "-XX:TieredStopAtLevel=1", "-cp",
                codeSource(Native.class) + ":" + codeSource(TapFdLauncher.class),
                TapFdLauncher.class.getName(), name, String.valueOf(queues));
    }

    private static String codeSource(Class<?> c) {
        try {
            return Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
        } catch (java.net.URISyntaxException e) {
            throw new AssertionError(e);
        }
    }
}
