package org.jvhost.host.it;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The traffic gap as a QEMU guest sees it: the guest's {@code jvtest.mode=gap} runs
 * scripts/lib/gapprobe.c against a reflecting back-end (the loopback device), which sends a frame
 * every few hundred microseconds and prints a {@code JVTEST GAP} line per window: the longest time
 * between two reflected frames arriving in that window, and the frames lost and duplicated so far.
 * Nothing here reads jvhost's logs.
 */
final class GuestGapProbe {

    /** One frame per this many microseconds; one line per {@link #WINDOW_MS}. */
    static final int INTERVAL_US = 200;
    static final int WINDOW_MS = 250;
    /** The probe counts a frame lost when it has not come back this long after it was sent. */
    static final Duration LOSS_DELAY = Duration.ofMillis(2000 + 2 * WINDOW_MS);
    static final String GUEST_ARGS = "jvtest.mode=gap jvtest.gapus=" + INTERVAL_US + " jvtest.gapwin=" + WINDOW_MS;

    // Ends at the line break: output arrives in chunks.
    private static final Pattern LINE = Pattern.compile("JVTEST GAP w=(\\d+) sent=(\\d+) recv=(\\d+) lost=(\\d+)"
            + " dup=(\\d+) refused=(\\d+) maxgap_us=(\\d+) netgap_us=(\\d+) maxrtt_us=(\\d+) stall_us=(\\d+) late=(\\d+)\\r?\\n");

    /** One window's line; sent, recv, lost, dup and refused count since the probe started. */
    record Window(int index, long sent, long recv, long lost, long dup, long refused, long maxGapUs, long netGapUs,
                  long maxRttUs, long stallUs, long late) {
    }

    /**
     * What the windows from one mark to another say: the longest gap, the longest less the guest's own
     * stalls in it (the figure that counts: {@code netgap_us} in gapprobe.c), the longest round trip, the
     * guest's longest stall, the most send slots one window missed because the guest itself ran late, and
     * the frames lost and duplicated meanwhile.
     */
    record Span(int windows, long maxGapUs, long netGapUs, long maxRttUs, long stallUs, long maxLate, long lost,
                long dup, long refused) {
        String format(String prefix) {
            return String.format("%s_gap_ms=%.1f %s_raw_gap_ms=%.1f %s_rtt_ms=%.1f %s_guest_stall_ms=%.1f"
                    + " %s_late_slots=%d %s_lost=%d %s_dup=%d %s_refused=%d", prefix, netGapUs / 1000.0, prefix,
                    maxGapUs / 1000.0, prefix, maxRttUs / 1000.0, prefix, stallUs / 1000.0, prefix, maxLate, prefix,
                    lost, prefix, dup, prefix, refused);
        }

        /**
         * Whether the guest stopped for longer than its RX ring lasts at the probe's rate: the reflector
         * then finds the ring full and drops frames, at any back-end, handover or not.
         */
        boolean guestOverranItsRing(int rxRing) {
            return stallUs > (long) rxRing * INTERVAL_US;
        }
    }

    private final ProcessUnderTest guest;

    GuestGapProbe(QemuGuest guest) {
        this.guest = guest.process();
    }

    /** The windows printed after {@code mark}, in order. */
    List<Window> windowsSince(int mark) {
        List<Window> windows = new ArrayList<>();
        Matcher m = LINE.matcher(guest.outputSince(mark));
        while (m.find()) {
            long[] v = new long[11];
            for (int i = 0; i < v.length; i++) {
                v[i] = Long.parseLong(m.group(i + 1));
            }
            windows.add(new Window((int) v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10]));
        }
        return windows;
    }

    /** Waits until a window after {@code mark} shows more than {@code frames} frames back; returns its recv. */
    long awaitReceivedAbove(long frames, int mark, Duration timeout, ProcessUnderTest backend) {
        long deadline = System.nanoTime() + timeout.toNanos();
        int from = mark;
        while (true) {
            Duration left = Duration.ofNanos(deadline - System.nanoTime());
            if (left.isNegative() || left.isZero()) {
                throw new AssertionError("the guest's reflected frames did not rise above " + frames + " within "
                        + timeout + guest.tail());
            }
            Matcher m = guest.await(LINE, from, left, backend);
            if (Long.parseLong(m.group(3)) > frames) {
                return Long.parseLong(m.group(3));
            }
            from = m.end();
        }
    }

    /** Waits until {@code time} of windows more are printed (at most twice as long plus 5 s). */
    void awaitWindows(Duration time, ProcessUnderTest backend) {
        long deadline = System.nanoTime() + 2 * time.toNanos() + Duration.ofSeconds(5).toNanos();
        int from = guest.mark();
        for (long i = Math.max(1, time.toMillis() / WINDOW_MS); i > 0; i--) {
            Duration left = Duration.ofNanos(Math.max(1, deadline - System.nanoTime()));
            from = guest.await(LINE, from, left, backend).end();
        }
    }

    /**
     * The windows printed between two of the guest's marks: the longest gap and round trip in them, and
     * what their counters rose by since the window before them.
     */
    Span span(int from, int to) {
        List<Window> all = windowsSince(0);
        int first = all.size() - windowsSince(from).size();
        int end = all.size() - windowsSince(to).size();
        if (end <= first) {
            throw new AssertionError("no gap probe window between the guest's marks " + from + " and " + to + guest.tail());
        }
        List<Window> in = all.subList(first, end);
        Window base = first > 0 ? all.get(first - 1) : new Window(-1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        Window last = in.get(in.size() - 1);
        return new Span(in.size(), max(in, Window::maxGapUs), max(in, Window::netGapUs), max(in, Window::maxRttUs),
                max(in, Window::stallUs), max(in, Window::late), last.lost() - base.lost(), last.dup() - base.dup(),
                last.refused() - base.refused());
    }

    private static long max(List<Window> windows, java.util.function.ToLongFunction<Window> field) {
        return windows.stream().mapToLong(field).max().orElse(0);
    }
}
