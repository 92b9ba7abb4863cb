package org.jvhost.host.it;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * 2 MiB huge pages for one test, and a private hugetlbfs mount to allocate them from. {@link #reserve}
 * raises {@code /proc/sys/vm/nr_hugepages} by what the test needs and mounts hugetlbfs in a temporary
 * directory (never touching {@code /dev/hugepages}, which other software may use); {@link #close()}
 * unmounts it and writes the old {@code nr_hugepages} back, so the machine is left as found.
 *
 * <p>Needs root; skips (JUnit assumption) if not root or if the kernel cannot find that many free
 * 2 MiB pages (fragmented memory).
 */
public final class Hugepages implements AutoCloseable {

    private static final Path NR_HUGEPAGES = Path.of("/proc/sys/vm/nr_hugepages");
    private static final Path MEMINFO = Path.of("/proc/meminfo");
    private static final String MOUNT = "/usr/bin/mount";
    private static final String UMOUNT = "/usr/bin/umount";

    private final long oldPages;
    private final Path dir;
    private final Path logDir;
    private boolean mounted;

    private Hugepages(long oldPages, Path dir, Path logDir) {
        this.oldPages = oldPages;
        this.dir = dir;
        this.logDir = logDir;
    }

    /** Reserves {@code pages} more 2 MiB pages and mounts hugetlbfs (pagesize=2M) in a temporary directory. */
    public static Hugepages reserve(long pages, Path logDir) {
        assumeTrue(Peers.isRoot(), "huge page tests need root (to raise /proc/sys/vm/nr_hugepages and mount hugetlbfs)");
        assumeTrue(Files.isWritable(NR_HUGEPAGES), NR_HUGEPAGES + " is not writable");
        assumeTrue(hugePageKb() == 2048, "the default huge page size is " + hugePageKb() + " kB, not 2048 kB");
        long old = Long.parseLong(read(NR_HUGEPAGES));
        long freeBefore = meminfo("HugePages_Free");
        Hugepages h;
        try {
            h = new Hugepages(old, Files.createTempDirectory("jvit-huge"), logDir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        try {
            write(NR_HUGEPAGES, String.valueOf(old + pages));
            long free = meminfo("HugePages_Free");
            assumeTrue(free >= pages, "the kernel reserved only " + (free - freeBefore) + " of " + pages
                    + " 2 MiB huge pages (nr_hugepages " + old + " -> " + read(NR_HUGEPAGES) + "): memory too fragmented");
            h.run(List.of(MOUNT, "-t", "hugetlbfs", "-o", "pagesize=2M", "jvit-hugetlbfs", h.dir.toString()));
            h.mounted = true;
            return h;
        } catch (RuntimeException | Error e) {
            h.close();
            throw e;
        }
    }

    /** The hugetlbfs mount point (for {@code --huge-dir} or QEMU's {@code mem-path}). */
    public Path dir() {
        return dir;
    }

    /** Unmounts and restores {@code nr_hugepages}. Call after every process using the pages has ended. */
    @Override
    public void close() {
        try {
            if (mounted) {
                run(List.of(UMOUNT, dir.toString()));
                mounted = false;
            }
            Peers.deleteTree(dir);
        } finally {
            write(NR_HUGEPAGES, String.valueOf(oldPages));
        }
    }

    public static long meminfo(String key) {
        for (String line : readLines(MEMINFO)) {
            if (line.startsWith(key + ":")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        throw new AssertionError(key + " not in " + MEMINFO);
    }

    private static long hugePageKb() {
        return meminfo("Hugepagesize");
    }

    private void run(List<String> cmd) {
        try (ProcessUnderTest p = ProcessUnderTest.start(Path.of(cmd.get(0)).getFileName().toString(), cmd, logDir)) {
            int status = p.awaitExit(Duration.ofSeconds(20));
            if (status != 0) {
                throw new AssertionError(String.join(" ", cmd) + " failed with status " + status + p.tail());
            }
        }
    }

    private static String read(Path p) {
        return readLines(p).get(0).trim();
    }

    private static List<String> readLines(Path p) {
        try {
            return Files.readAllLines(p);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void write(Path p, String value) {
        try {
            Files.writeString(p, value + "\n");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + value + " to " + p, e);
        }
    }
}
