package org.jvhost.host.it;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * What a process holds, read from {@code /proc/PID}: its open fds and its shared mappings. A vhost-user
 * back-end holds per front-end a socket, kick/call eventfds and one MAP_SHARED mapping per memory region
 * (memfd, hugetlbfs or other file); once the front-end is gone all of them must be released, so comparing
 * these against a baseline taken before the front-end came finds leaks.
 */
public final class ProcessResources {

    /** One sample: the fd count and the shared mappings (lines of {@code /proc/PID/maps}). */
    public record Snapshot(int fds, List<String> fdTargets, List<String> sharedMappings) {

        public int sharedCount() {
            return sharedMappings.size();
        }

        /** For failure messages: everything held, one per line. */
        public String describe() {
            return fds + " fds " + fdTargets + "\n" + sharedMappings.size() + " shared mappings:\n  "
                    + String.join("\n  ", sharedMappings);
        }
    }

    private ProcessResources() {
    }

    public static Snapshot snapshot(long pid) {
        Path proc = Path.of("/proc", String.valueOf(pid));
        List<String> targets = new ArrayList<>();
        try (Stream<Path> fds = Files.list(proc.resolve("fd"))) {
            for (Path fd : fds.toList()) {
                try {
                    targets.add(fd.getFileName() + "->" + Files.readSymbolicLink(fd));
                } catch (NoSuchFileException e) {
                    // Closed between listing and reading: not held any more.
                }
            }
            List<String> shared = new ArrayList<>();
            for (String line : Files.readAllLines(proc.resolve("maps"))) {
                String[] f = line.split("\\s+", 6);
                if (f.length >= 2 && f[1].length() == 4 && f[1].charAt(3) == 's') {
                    shared.add(line);
                }
            }
            return new Snapshot(targets.size(), targets, shared);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + proc + " (process gone?)", e);
        }
    }

    /**
     * Shared mappings of {@code pid} backed by huge pages ({@code KernelPageSize} above 4 kB in
     * {@code /proc/PID/smaps}): proves a region really came from hugetlbfs, not a fallback.
     */
    public static List<String> hugePageMappings(long pid) {
        Path smaps = Path.of("/proc", String.valueOf(pid), "smaps");
        List<String> result = new ArrayList<>();
        try {
            String header = null;
            for (String line : Files.readAllLines(smaps)) {
                if (line.matches("^[0-9a-f]+-[0-9a-f]+ .*")) {
                    header = line;
                } else if (header != null && line.startsWith("KernelPageSize:")) {
                    long kb = Long.parseLong(line.replaceAll("[^0-9]", ""));
                    String[] f = header.split("\\s+", 6);
                    if (kb > 4 && f[1].charAt(3) == 's') {
                        result.add(header + " (KernelPageSize " + kb + " kB)");
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + smaps, e);
        }
        return result;
    }

    /**
     * Waits until {@code pid} holds no more fds and shared mappings than {@code baseline}; returns how long
     * that took. Fails after {@code timeout} naming what is still held.
     */
    public static Duration awaitBaseline(ProcessUnderTest process, Snapshot baseline, Duration timeout) {
        long start = System.nanoTime();
        long deadline = start + timeout.toNanos();
        while (true) {
            Snapshot now = snapshot(process.pid());
            if (now.fds() <= baseline.fds() && now.sharedCount() <= baseline.sharedCount()) {
                return Duration.ofNanos(System.nanoTime() - start);
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError(process.name() + " still holds the dead front-end's resources " + timeout
                        + " after it died.\nbaseline: " + baseline.describe() + "\nnow: " + now.describe() + process.tail());
            }
            Peers.sleep(Duration.ofMillis(100));
        }
    }
}
