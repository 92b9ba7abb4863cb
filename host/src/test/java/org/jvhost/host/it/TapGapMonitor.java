package org.jvhost.host.it;

import java.util.ArrayList;
import java.util.List;

/**
 * Times the traffic a guest behind TAPs sees, from inside the test namespace: a bash loop there samples
 * every ~5 ms the TAPs' {@code tx_packets} (frames the back-end took from the TAP for the guest: tun
 * counts a frame when it is read, not when it is queued) and {@code rx_packets} (frames the guest sent),
 * and prints a wall-clock timestamped line whenever one changed. {@link #switchOverGap} then gives the
 * time between the last frame to (or from) the guest on the source device's TAP and the first on the
 * destination's, and {@link #longestGap} the longest pause over all the TAPs.
 */
final class TapGapMonitor implements AutoCloseable {
    private final ProcessUnderTest sampler;
    private final int taps;

    private TapGapMonitor(ProcessUnderTest sampler, int taps) {
        this.sampler = sampler;
        this.taps = taps;
    }

    /** Starts sampling {@code taps} in {@code ns} for at most {@code seconds}. */
    static TapGapMonitor start(NetNamespace ns, int seconds, java.nio.file.Path logDir, String... taps) {
        StringBuilder read = new StringBuilder();
        StringBuilder line = new StringBuilder();
        for (int i = 0; i < taps.length; i++) {
            String stats = "/sys/class/net/" + taps[i] + "/statistics/";
            read.append("read -r t").append(i).append(" < ").append(stats).append("tx_packets; ")
                    .append("read -r r").append(i).append(" < ").append(stats).append("rx_packets; ");
            line.append(" $t").append(i).append(" $r").append(i);
        }
        // no fork per sample: sysfs reads are redirections, and the pause is a read timing out on an idle pipe
        String loop = "exec 3<> <(:); last=; while :; do " + read + "cur=\"" + line.toString().trim() + "\"; "
                + "if [ \"$cur\" != \"$last\" ]; then echo \"GAPMON $EPOCHREALTIME $cur\"; last=$cur; fi; "
                + "read -t 0.005 -u 3 _; done";
        return new TapGapMonitor(ProcessUnderTest.start("tap-gaps", ns.inside("timeout", String.valueOf(seconds),
                "bash", "-c", loop), logDir), taps.length);
    }

    /**
     * The switch-over as the guest's traffic saw it: from the last sample at which frames {@code toGuest}
     * (or from it) moved on TAP {@code from} to the first at which they moved on TAP {@code to} after
     * that, in ms; -1 if they never moved on {@code to} after {@code from}.
     */
    long switchOverGap(boolean toGuest, int from, int to) {
        List<long[]> samples = samples();
        long last = -1;
        for (int i = 1; i < samples.size(); i++) {
            if (counter(samples.get(i), from, toGuest) > counter(samples.get(i - 1), from, toGuest)) {
                last = samples.get(i)[0];
            }
        }
        for (int i = 1; i < samples.size(); i++) {
            long[] s = samples.get(i);
            if (last >= 0 && s[0] > last && counter(s, to, toGuest) > counter(samples.get(i - 1), to, toGuest)) {
                return s[0] - last;
            }
        }
        return -1;
    }

    /**
     * The longest interval, in ms, in which no frame {@code toGuest} (or from it) moved on any TAP, of those
     * ending within {@code [fromMillis, toMillis]} (epoch ms).
     */
    long longestGap(boolean toGuest, long fromMillis, long toMillis) {
        List<long[]> samples = samples();
        long previous = -1;
        long longest = 0;
        for (int i = 1; i < samples.size(); i++) {
            long[] s = samples.get(i);
            boolean moved = false;
            for (int tap = 0; tap < taps; tap++) {
                moved |= counter(s, tap, toGuest) > counter(samples.get(i - 1), tap, toGuest);
            }
            if (moved) {
                if (previous >= 0 && s[0] >= fromMillis && s[0] <= toMillis) {
                    longest = Math.max(longest, s[0] - previous);
                }
                previous = s[0];
            }
        }
        return longest;
    }

    private static long counter(long[] sample, int tap, boolean toGuest) {
        return sample[1 + 2 * tap + (toGuest ? 0 : 1)];
    }

    /** Each sample: epoch ms, then per TAP tx_packets and rx_packets. */
    private List<long[]> samples() {
        List<long[]> out = new ArrayList<>();
        for (String l : sampler.outputSince(0).split("\n")) {
            String[] f = l.trim().split(" ");
            if (f.length != 2 + 2 * taps || !f[0].equals("GAPMON")) {
                continue;
            }
            long[] s = new long[1 + 2 * taps];
            s[0] = Math.round(Double.parseDouble(f[1]) * 1000);
            for (int i = 0; i < 2 * taps; i++) {
                s[1 + i] = Long.parseLong(f[2 + i]);
            }
            out.add(s);
        }
        return out;
    }

    @Override
    public void close() {
        sampler.close();
    }
}
