package org.jvhost.bench;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * {@link LoopbackBench}'s frame path timed by the thread's CPU time instead of wall time, for a shared
 * machine: with more runnable threads than CPUs, JMH's wall-clock iterations mostly measure how long the
 * benchmark thread waited for a CPU (one case moved from 130 to 3,000 ns per frame between rounds).
 * CPU time leaves that out (not the cache and TLB damage other processes do).
 *
 * <p>All cases run in one JVM, interleaved: per round, each case runs for SECONDS of CPU time, and the
 * report is per case the median over rounds. Usage:
 * {@code java -cp benchmarks.jar org.jvhost.bench.LoopbackCpuTime ROUNDS SECONDS FRAMEBYTES:LOGGING[:RINGS[:INORDER]]...},
 * e.g. {@code 7 1 64:off 64:on 1500:off 1500:on}, or {@code 7 1 64:off:split 64:off:packed} (RINGS split,
 * the default, or packed), or {@code 64:off:packed:on} (the driver acks VIRTIO_F_IN_ORDER). A case whose logging the jar does not have (a build
 * before dirty logging) is skipped; {@code FRAMEBYTES:-} runs without setting it.
 */
public final class LoopbackCpuTime {
    private static final long WARM_UP_NANOS = 2_000_000_000L;
    private static final int CALLS_PER_CHECK = 1000;

    private LoopbackCpuTime() {
    }

    public static void main(String[] args) throws Exception {
        int rounds = Integer.parseInt(args[0]);
        long nanos = (long) (Double.parseDouble(args[1]) * 1e9);
        List<String> names = new ArrayList<>();
        List<LoopbackBench> cases = new ArrayList<>();
        for (String c : Arrays.copyOfRange(args, 2, args.length)) {
            LoopbackBench b = newCase(c);
            if (b != null) {
                names.add(c);
                cases.add(b);
            }
        }
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        for (LoopbackBench b : cases) {
            run(b, mx, WARM_UP_NANOS);
        }
        double[][] perFrame = new double[cases.size()][rounds];
        for (int r = 0; r < rounds; r++) {
            for (int i = 0; i < cases.size(); i++) {
                perFrame[i][r] = run(cases.get(i), mx, nanos);
                cases.get(i).check();
            }
        }
        for (int i = 0; i < cases.size(); i++) {
            double[] v = perFrame[i].clone();
            Arrays.sort(v);
            System.out.printf("%-10s median %6.1f ns/frame (CPU time)  rounds:%s%n", names.get(i), v[rounds / 2],
                    Arrays.toString(perFrame[i]).replaceAll("(\\.\\d)\\d*", "$1"));
            cases.get(i).tearDown();
        }
    }

    /** A set-up LoopbackBench for {@code FRAMEBYTES:LOGGING}, or null if this build has no such logging. */
    private static LoopbackBench newCase(String c) throws Exception {
        String[] p = c.split(":");
        LoopbackBench b = new LoopbackBench();
        LoopbackBench.class.getField("frameBytes").setInt(b, Integer.parseInt(p[0]));
        if (p.length > 2) {
            LoopbackBench.class.getField("rings").set(b, p[2]);
        }
        if (p.length > 3) {
            LoopbackBench.class.getField("inOrder").set(b, p[3]);
        }
        if (!p[1].equals("-")) {
            try {
                LoopbackBench.class.getField("logging").set(b, p[1]);
            } catch (NoSuchFieldException e) {
                System.out.println(c + ": skipped, this build has no logging parameter");
                return null;
            }
        }
        b.setUp();
        return b;
    }

    /** Runs txToRx for {@code nanos} of this thread's CPU time; returns CPU ns per frame. */
    private static double run(LoopbackBench b, ThreadMXBean mx, long nanos) {
        long start = mx.getCurrentThreadCpuTime();
        long now = start;
        long frames = 0;
        while (now - start < nanos) {
            for (int k = 0; k < CALLS_PER_CHECK; k++) {
                frames += b.txToRx();
            }
            now = mx.getCurrentThreadCpuTime();
        }
        return (double) (now - start) / frames;
    }
}
