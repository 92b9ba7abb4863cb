package org.jvhost.host.it;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

/**
 * Where the real peers and the test's files are. Binaries come from Debian packages that
 * {@code scripts/install-deps.sh} installs; a missing one skips the test with the package to install
 * (CI never skips: {@code scripts/test.sh} installs them first).
 */
public final class Peers {

    public static final String TESTPMD = "/usr/bin/dpdk-testpmd";
    public static final String QEMU = "/usr/bin/qemu-system-x86_64";
    public static final String STDBUF = "/usr/bin/stdbuf";
    public static final String TASKSET = "/usr/bin/taskset";

    /**
     * CPU plan for a 2-CPU machine: the back-end under test polls on CPU 1, front-ends run on CPU 0.
     * Two busy-polling testpmds on one CPU would starve each other.
     */
    public static final int FRONT_END_CPU = 0;
    public static final int BACK_END_CPU = Math.min(1, Runtime.getRuntime().availableProcessors() - 1);

    private static final AtomicInteger SEQUENCE = new AtomicInteger();

    private Peers() {
    }

    public static void assumeInstalled(String binary, String debianPackage) {
        assumeTrue(Files.isExecutable(Path.of(binary)),
                binary + " is missing: install Debian package " + debianPackage + " (scripts/install-deps.sh does)");
    }

    /** A name unique in this JVM and across concurrent builds, for DPDK's {@code --file-prefix}. */
    public static String uniqueName(String what) {
        return "jvit-" + ProcessHandle.current().pid() + "-" + what + "-" + SEQUENCE.incrementAndGet();
    }

    /** {@code host/target}, from failsafe's working directory (the module's base directory). */
    public static Path targetDir() {
        return Path.of(System.getProperty("jvhost.it.target", "target")).toAbsolutePath();
    }

    /** The project's {@code scripts/} directory. */
    public static Path scriptsDir() {
        return Path.of(System.getProperty("jvhost.it.scripts", "../scripts")).toAbsolutePath().normalize();
    }

    /** Per-test log directory: {@code host/target/it-logs/Class.method[params]/}. */
    public static Path logDir(Class<?> test, String method, String display) {
        String name = display.startsWith(method + "(") ? method : method + "[" + display + "]";
        return targetDir().resolve("it-logs").resolve(test.getSimpleName() + "." + name.replaceAll("[^A-Za-z0-9_.=\\[\\]-]+", "_"));
    }

    /**
     * A short private directory for sockets: Unix socket paths are limited to 107 bytes, which a
     * deep checkout's target directory can exceed.
     */
    public static Path socketDir() {
        try {
            return Files.createTempDirectory("jvit");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static void deleteTree(Path dir) {
        if (dir == null || !Files.exists(dir)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            // Best effort: a leftover temp directory harms nothing.
        }
    }

    /**
     * Identity of the file at {@code path}, or null: tells a freshly created socket from a stale one.
     * The inode alone does not: a file system may give the new socket the inode number the unlinked
     * stale one had, so the modification time (set by bind) is part of the identity.
     */
    public static Object fileKey(Path path) {
        try {
            BasicFileAttributes a = Files.readAttributes(path, BasicFileAttributes.class);
            return List.of(String.valueOf(a.fileKey()), a.lastModifiedTime().toString());
        } catch (IOException e) {
            return null;
        }
    }

    /** Waits until a new file (not the one whose key was {@code before}) exists at {@code path}. */
    public static void awaitNewFile(Path path, Object before, Duration timeout, ProcessUnderTest owner) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            Object now = fileKey(path);
            if (now != null && !now.equals(before)) {
                return;
            }
            if (!owner.isAlive()) {
                throw new AssertionError(owner.name() + " exited before creating " + path + owner.tail());
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError(owner.name() + " did not create " + path + " within " + timeout + owner.tail());
            }
            sleep(Duration.ofMillis(50));
        }
    }

    public static void sleep(Duration d) {
        try {
            Thread.sleep(d.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        }
    }

    /** {@code taskset -c CPU stdbuf -oL command...}: pinned, and line-buffered so logs arrive on time. */
    public static List<String> pinnedLineBuffered(int cpu, List<String> command) {
        return Stream.concat(Stream.of(TASKSET, "-c", String.valueOf(cpu), STDBUF, "-oL"), command.stream()).toList();
    }

    /** True if this JVM runs as root (effective uid 0), which namespace, TAP and huge-page tests need. */
    public static boolean isRoot() {
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/status"))) {
                if (line.startsWith("Uid:")) {
                    return line.split("\\s+")[2].equals("0");
                }
            }
        } catch (java.io.IOException e) {
            return false;
        }
        return false;
    }
}
