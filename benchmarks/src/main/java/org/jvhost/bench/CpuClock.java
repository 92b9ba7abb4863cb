package org.jvhost.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * What the kernel says happened to the CPUs during a measurement: steal time per CPU from
 * {@code /proc/stat} (time the hypervisor ran something else on the vCPU), and a thread's run-queue
 * wait from {@code /proc/self/task/TID/schedstat} (time it was runnable but another thread of this VM
 * ran). A round that is slow with neither is slow on the CPU itself.
 */
final class CpuClock {
    private static final int CPUS = 2;
    /** Field of a {@code cpuN} line of /proc/stat: user nice system idle iowait irq softirq steal. */
    private static final int STEAL = 8;

    private CpuClock() {
    }

    /** Per CPU: total jiffies, then steal jiffies ({@code [2 * cpu]} and {@code [2 * cpu + 1]}). */
    static long[] read() throws IOException {
        long[] v = new long[2 * CPUS];
        List<String> lines = Files.readAllLines(Path.of("/proc/stat"));
        for (int cpu = 0; cpu < CPUS; cpu++) {
            for (String line : lines) {
                if (line.startsWith("cpu" + cpu + " ")) {
                    String[] f = line.trim().split("\\s+");
                    for (int k = 1; k < f.length && k <= STEAL; k++) {
                        v[2 * cpu] += Long.parseLong(f[k]);
                    }
                    v[2 * cpu + 1] = Long.parseLong(f[STEAL]);
                }
            }
        }
        return v;
    }

    /** "steal cpu0 x%, cpu1 y%" since {@code before}. */
    static String stealSince(long[] before) throws IOException {
        long[] now = read();
        StringBuilder b = new StringBuilder("steal");
        for (int cpu = 0; cpu < CPUS; cpu++) {
            long total = now[2 * cpu] - before[2 * cpu];
            long steal = now[2 * cpu + 1] - before[2 * cpu + 1];
            b.append(String.format(" cpu%d %.1f%%", cpu, 100.0 * steal / Math.max(1, total)));
        }
        return b.toString();
    }

    /** The task's on-CPU ns, run-queue wait ns and time slices ({@code schedstat}). */
    static long[] schedstat(String task) throws IOException {
        String[] f = Files.readString(Path.of("/proc/self/task", task, "schedstat")).trim().split("\\s+");
        return new long[] {Long.parseLong(f[0]), Long.parseLong(f[1]), Long.parseLong(f[2])};
    }

    /** "on CPU a ms, waited b ms, c slices" since {@code before}. */
    static String waitSince(long[] before, String task) throws IOException {
        long[] now = schedstat(task);
        return String.format("on CPU %d ms, waited %d ms, %d slices", (now[0] - before[0]) / 1_000_000,
                (now[1] - before[1]) / 1_000_000, now[2] - before[2]);
    }
}
