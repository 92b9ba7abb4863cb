package org.jvhost.host.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * DPDK testpmd with a {@code virtio_user} port: a vhost-user front-end without a VM, driven through
 * its interactive prompt on stdin. Pinned (main and forwarding lcore) to {@link Peers#FRONT_END_CPU}.
 */
public final class TestpmdFrontEnd implements AutoCloseable {

    private static final Pattern PROMPT = Pattern.compile("testpmd> ");
    private static final Duration COMMAND_TIMEOUT = Duration.ofSeconds(20);
    private static final Pattern STATS_BLOCK = Pattern.compile(
            "NIC statistics for port 0 +#+\\s+RX-packets:\\s*(\\d+)\\s+RX-missed:\\s*(\\d+)\\s+RX-bytes:\\s*(\\d+)\\s+"
                    + "RX-errors:\\s*(\\d+)\\s+RX-nombuf:\\s*(\\d+)\\s+TX-packets:\\s*(\\d+)\\s+TX-errors:\\s*(\\d+)\\s+"
                    + "TX-bytes:\\s*(\\d+)");
    private static final Pattern STREAM_STATS = Pattern.compile(
            "Forward Stats for RX Port= ?0/Queue= ?(\\d+) -> TX Port= ?0/Queue= ?(\\d+) -+\\s+"
                    + "RX-packets:\\s*(\\d+)\\s+TX-packets:\\s*(\\d+)");
    private static final Pattern FORWARDING_DONE = Pattern.compile("Done\\.");

    private final ProcessUnderTest process;

    /** Counters of {@code show port stats all} for port 0. */
    public record PortStats(long rxPackets, long rxMissed, long rxBytes, long rxErrors, long rxNoMbuf,
                            long txPackets, long txErrors, long txBytes) {
    }

    /** Port 0's counters at the start and at the end of an interval of {@code length} with traffic running. */
    public record Interval(PortStats first, PortStats second, Duration length) {

        public long rxPackets() {
            return second.rxPackets() - first.rxPackets();
        }

        public long txPackets() {
            return second.txPackets() - first.txPackets();
        }

        /**
         * A round trip that keeps flowing: both counters grew by {@code minFrames} or more over the interval
         * (a stall, e.g. a lost kick or a missed call, stops them), nothing came back that was not sent, and
         * no RX/TX errors or mbuf shortages. {@code context} and the back-end's output go into the messages.
         */
        public void assertFlowing(long minFrames, String context, ProcessUnderTest backend) {
            String where = " (" + context + "first " + first + ", then " + second + ")";
            String in = " frames in " + length.toSeconds() + " s";
            assertTrue(txPackets() >= minFrames, "TX stalled: " + txPackets() + in + where + backend.tail());
            assertTrue(rxPackets() >= minFrames, "RX stalled: " + rxPackets() + in + where + backend.tail());
            assertTrue(second.rxPackets() <= second.txPackets(), "received more frames than were sent" + where);
            assertEquals(0, second.rxErrors(), "RX-errors" + where);
            assertEquals(0, second.txErrors(), "TX-errors" + where);
            assertEquals(0, second.rxNoMbuf(), "RX-nombuf" + where);
        }
    }

    /** One forwarding stream's counters as printed by {@code stop}. */
    public record StreamStats(int rxQueue, int txQueue, long rxPackets, long txPackets) {
    }

    private TestpmdFrontEnd(ProcessUnderTest process) {
        this.process = process;
    }

    /**
     * Starts testpmd and waits for its prompt. With {@code listen}, virtio_user creates the socket and
     * waits for the back-end ({@code server=1}); then the caller starts the back-end before the prompt
     * appears, so this does not wait for the prompt: call {@link #awaitPrompt()}.
     */
    public static TestpmdFrontEnd start(String name, Path socket, int queues, String forwardMode, boolean listen,
                                        Path logDir) {
        return start(name, socket, queues, forwardMode, listen, logDir, NO_HUGE);
    }

    /** Guest-memory EAL options of {@link #start(String, Path, int, String, boolean, Path)}: 256 MiB of 4 KiB pages. */
    public static final List<String> NO_HUGE = List.of("--no-huge", "-m", "256");

    /**
     * 256 MiB of 2 MiB pages from the hugetlbfs mounted at {@code hugeDir}, as one file: without
     * {@code --single-file-segments} every 2 MiB page is its own vhost-user memory region and the table
     * overflows virtio_user's 8 regions; {@code --in-memory} keeps DPDK from leaving files behind.
     */
    public static List<String> hugepages(Path hugeDir) {
        return List.of("--in-memory", "--single-file-segments", "--huge-dir", hugeDir.toString(), "-m", "256");
    }

    /** As above, with the EAL's memory options ({@link #NO_HUGE} or {@link #hugepages(Path)}). */
    public static TestpmdFrontEnd start(String name, Path socket, int queues, String forwardMode, boolean listen,
                                        Path logDir, List<String> memoryOptions) {
        return start(name, socket, queues, forwardMode, listen, logDir, memoryOptions, "");
    }

    /** As above, with more virtio_user options appended to the vdev ({@code ",packed_vq=1"}). */
    public static TestpmdFrontEnd start(String name, Path socket, int queues, String forwardMode, boolean listen,
                                        Path logDir, List<String> memoryOptions, String vdevOptions) {
        int cpu = Peers.FRONT_END_CPU;
        String vdev = "virtio_user0,path=" + socket + ",queues=" + queues + ",queue_size=256" + (listen ? ",server=1" : "")
                + vdevOptions;
        List<String> args = new ArrayList<>(List.of(Peers.TESTPMD, "--lcores", "0@" + cpu + ",1@" + cpu, "--no-pci"));
        args.addAll(memoryOptions);
        args.addAll(List.of("--file-prefix", Peers.uniqueName("fe"), "--vdev", vdev, "--",
                "-i", "--port-topology=loop", "--forward-mode=" + forwardMode,
                "--rxq=" + queues, "--txq=" + queues, "--total-num-mbufs=16384"));
        List<String> cmd = Peers.pinnedLineBuffered(cpu, args);
        TestpmdFrontEnd fe = new TestpmdFrontEnd(ProcessUnderTest.start(name, cmd, logDir));
        if (!listen) {
            try {
                fe.awaitPrompt();
            } catch (RuntimeException | Error e) {
                fe.close();
                throw e;
            }
        }
        return fe;
    }

    public ProcessUnderTest process() {
        return process;
    }

    public void awaitPrompt() {
        awaitPrompt(null);
    }

    /** Waits for the first prompt, failing early if {@code backend} exits meanwhile. */
    public void awaitPrompt(ProcessUnderTest backend) {
        process.await(PROMPT, 0, Duration.ofSeconds(60), backend);
    }

    /** Runs one interactive command and returns what it printed, up to the next prompt. */
    public String command(String line) {
        int mark = process.mark();
        process.send(line);
        Matcher m = process.await(PROMPT, mark, COMMAND_TIMEOUT);
        return process.outputSince(mark).substring(0, m.start() - mark);
    }

    public PortStats portStats() {
        String out = command("show port stats all");
        Matcher m = STATS_BLOCK.matcher(out);
        if (!m.find()) {
            throw new AssertionError("cannot parse 'show port stats all' output:\n" + out);
        }
        return new PortStats(n(m, 1), n(m, 2), n(m, 3), n(m, 4), n(m, 5), n(m, 6), n(m, 7), n(m, 8));
    }

    /**
     * {@code start tx_first 4} in {@code io} mode: 4 bursts of 32 frames per queue circulate front-end ->
     * back-end -> front-end; returns after 2 s, once the round trip is under way.
     */
    public void startRoundTrip() {
        command("start tx_first 4");
        Peers.sleep(Duration.ofSeconds(2));
    }

    /** Port stats now and {@code length} later. */
    public Interval sample(Duration length) {
        PortStats first = portStats();
        Peers.sleep(length);
        return new Interval(first, portStats(), length);
    }

    /** {@code stop}: ends forwarding and returns the per-stream counters it prints. */
    public List<StreamStats> stop() {
        String out = command("stop");
        if (!FORWARDING_DONE.matcher(out).find()) {
            throw new AssertionError("'stop' did not finish:\n" + out);
        }
        List<StreamStats> streams = new ArrayList<>();
        Matcher m = STREAM_STATS.matcher(out);
        while (m.find()) {
            streams.add(new StreamStats(Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)), n(m, 3), n(m, 4)));
        }
        return streams;
    }

    private static long n(Matcher m, int group) {
        return Long.parseLong(m.group(group));
    }

    @Override
    public void close() {
        if (process.isAlive()) {
            try {
                process.send("quit");
                process.awaitExit(Duration.ofSeconds(10));
            } catch (AssertionError e) {
                // Fall through to the PID-based kill.
            }
        }
        process.close();
    }
}
