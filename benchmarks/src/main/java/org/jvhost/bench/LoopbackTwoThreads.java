package org.jvhost.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

/**
 * {@link LoopbackBench}'s rings with the driver and the device on two threads pinned to two CPUs, as
 * testpmd's front-end and jvhost's worker run in {@code scripts/bench-loopback.sh}: the driver does
 * testpmd's io forwarding (every frame received is sent again; 128 frames circulate, ring 256, batches
 * of 32, no notifications either way) and the device thread polls the TX ring as the worker does. What
 * one thread cannot show, this does: every descriptor, frame and used entry crosses between the CPUs,
 * so the rate is set by cache-line transfers as on the real path, without testpmd, QEMU's memory
 * layout or the host's event loop.
 *
 * <p>Per round, each case runs SECONDS; the report is per round and as the median: Mpps, the share of
 * the device thread's time spent draining (not polling an empty ring: below 100% the driver sets the
 * pace) and the device's ns per frame while draining (its per-frame cost with the transfers). Usage:
 * {@code taskset -c 0,1 java -cp benchmarks.jar org.jvhost.bench.LoopbackTwoThreads ROUNDS SECONDS
 * FRAMEBYTES:RINGS[:INORDER[:POOL]]...}, e.g. {@code 5 2 64:split 64:packed 64:packed:on 64:split:on:250}
 * (INORDER on: the driver acks VIRTIO_F_IN_ORDER, as DPDK's virtio_user does; POOL: the driver takes
 * its buffers from an {@link MbufPool} with that cache size, 250 as testpmd's, and touches each frame's
 * header as virtio_user does, instead of giving each descriptor one compact buffer it never touches).
 * Threads are pinned with {@code taskset -p} (driver on CPU 0, device on CPU 1), found by name in
 * {@code /proc/self/task}.
 */
public final class LoopbackTwoThreads {
    private static final int IN_FLIGHT = 128;
    private static final int DRIVER_CPU = 0;
    private static final int DEVICE_CPU = 1;
    private static final long WARM_UP_NANOS = 2_000_000_000L;

    private LoopbackTwoThreads() {
    }

    public static void main(String[] args) throws Exception {
        int rounds = Integer.parseInt(args[0]);
        long nanos = (long) (Double.parseDouble(args[1]) * 1e9);
        List<String> names = new ArrayList<>();
        List<Pair> cases = new ArrayList<>();
        for (String c : Arrays.copyOfRange(args, 2, args.length)) {
            names.add(c);
            cases.add(new Pair(c));
        }
        for (Pair p : cases) {
            p.measure(WARM_UP_NANOS);
        }
        double[][][] m = new double[cases.size()][3][rounds];
        for (int r = 0; r < rounds; r++) {
            for (int i = 0; i < cases.size(); i++) {
                long[] cpu0 = CpuClock.read();
                long[] wait0 = CpuClock.schedstat(cases.get(i).deviceTask);
                long uptime = java.lang.management.ManagementFactory.getRuntimeMXBean().getUptime();
                double[] one = cases.get(i).measure(nanos);
                for (int k = 0; k < 3; k++) {
                    m[i][k][r] = one[k];
                }
                System.out.printf("round %d %-12s at %d ms: %5.2f Mpps, %3.0f ns/frame, %s, device %s%n", r,
                        names.get(i), uptime, one[0], one[2], CpuClock.stealSince(cpu0),
                        CpuClock.waitSince(wait0, cases.get(i).deviceTask));
            }
        }
        for (int i = 0; i < cases.size(); i++) {
            cases.get(i).stop();
            System.out.printf("%-12s median %5.2f Mpps (rounds:%s)  device draining %.0f%% of the time (rounds:%s),"
                    + " %.0f ns per frame while draining (rounds:%s)%n", names.get(i), median(m[i][0]),
                    format(m[i][0], "%.2f"), 100 * median(m[i][1]), format(m[i][1], "%.2f"), median(m[i][2]),
                    format(m[i][2], "%.0f"));
            if (!cases.get(i).bench.poolTraffic().isEmpty()) {
                System.out.println(names.get(i) + " " + cases.get(i).bench.poolTraffic());
            }
        }
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    private static String format(double[] v, String f) {
        StringBuilder b = new StringBuilder();
        for (double x : v) {
            b.append(' ').append(String.format(f, x));
        }
        return b.toString();
    }

    /** One case: a set-up bench, its two threads, and their counters. */
    private static final class Pair {
        private final LoopbackBench bench = new LoopbackBench();
        private final AtomicLong frames = new AtomicLong();
        /** Device thread: ns spent draining (turns that found frames), and such turns. */
        private final AtomicLong deviceBusy = new AtomicLong();
        private final AtomicLong deviceDrains = new AtomicLong();
        /** 0 paused (the threads sleep, leaving the CPUs to the case measured), 1 running, 2 ending. */
        private volatile int phase;
        private final Thread driver;
        private final Thread device;
        /** The device thread's task id (for its schedstat). */
        final String deviceTask;

        Pair(String spec) throws Exception {
            String[] p = spec.split(":");
            bench.frameBytes = Integer.parseInt(p[0]);
            bench.rings = p[1];
            bench.logging = "off";
            if (p.length > 2) {
                bench.inOrder = p[2];
            }
            if (p.length > 3) {
                bench.pool = p[3];
            }
            bench.setUp();
            bench.startCirculating(IN_FLIGHT);
            String tag = Integer.toHexString(System.identityHashCode(this));
            driver = new Thread(this::driverLoop, "drv-" + tag);
            device = new Thread(this::deviceLoop, "dev-" + tag);
            driver.start();
            device.start();
            pin(driver.getName(), DRIVER_CPU);
            deviceTask = pin(device.getName(), DEVICE_CPU);
        }

        private void driverLoop() {
            long n = 0;
            int p;
            while ((p = phase) != 2) {
                if (p == 1) {
                    n += bench.driverTurn();
                    frames.setOpaque(n);
                } else {
                    pause();
                }
            }
        }

        private void deviceLoop() {
            long busy = 0;
            long drains = 0;
            int p;
            while ((p = phase) != 2) {
                if (p == 1) {
                    long t = System.nanoTime();
                    if (bench.deviceTurn()) {
                        busy += System.nanoTime() - t;
                        deviceBusy.setOpaque(busy);
                        deviceDrains.setOpaque(++drains);
                    }
                } else {
                    pause();
                }
            }
        }

        private static void pause() {
            try {
                Thread.sleep(1);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        /**
         * Runs both threads for {@code nanos}; returns Mpps, the device thread's share of the time spent
         * draining (the rest is polling an empty ring), and its ns per frame while draining.
         */
        double[] measure(long nanos) throws InterruptedException {
            phase = 1;
            Thread.sleep(100); // both threads spinning before the count starts
            long f0 = frames.getOpaque();
            long b0 = deviceBusy.getOpaque();
            long start = System.nanoTime();
            Thread.sleep(nanos / 1_000_000);
            long f1 = frames.getOpaque();
            long b1 = deviceBusy.getOpaque();
            long elapsed = System.nanoTime() - start;
            phase = 0;
            return new double[] {(f1 - f0) * 1e3 / elapsed, (double) (b1 - b0) / elapsed,
                (double) (b1 - b0) / Math.max(1, f1 - f0)};
        }

        void stop() throws InterruptedException {
            phase = 2;
            driver.join();
            device.join();
            bench.check();
            bench.tearDown();
        }
    }

    /** Pins this JVM's thread named {@code name} to {@code cpu} ({@code taskset -p}); returns its task id. */
    private static String pin(String name, int cpu) throws IOException, InterruptedException {
        for (int attempt = 0; attempt < 100; attempt++) { // a new thread names its task when it runs
            String task = pinOnce(name, cpu);
            if (task != null) {
                return task;
            }
            Thread.sleep(10);
        }
        throw new IOException("thread " + name + " not found in /proc/self/task");
    }

    private static String pinOnce(String name, int cpu) throws IOException, InterruptedException {
        try (Stream<Path> tasks = Files.list(Path.of("/proc/self/task"))) {
            for (Path t : (Iterable<Path>) tasks::iterator) {
                String comm;
                try {
                    comm = Files.readString(t.resolve("comm")).trim();
                } catch (IOException gone) {
                    continue;
                }
                if (comm.equals(name)) {
                    Process p = new ProcessBuilder("taskset", "-p", "-c", Integer.toString(cpu),
                            t.getFileName().toString()).redirectErrorStream(true).start();
                    p.getInputStream().readAllBytes();
                    if (p.waitFor() != 0) {
                        throw new IOException("taskset could not pin " + name);
                    }
                    return t.getFileName().toString();
                }
            }
        }
        return null;
    }
}
