package org.jvhost.host.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.IntStream;

/**
 * QEMU 7.2 under TCG (KVM is unusable on the CI machine kind) booting the test guest with one
 * vhost-user virtio-net NIC. Facts this relies on (docs: /work/shared/REAL-PEERS.md): guest memory must
 * be a shared memfd for the back-end to map it; {@code vectors=0} (INTx) because QEMU 7.2 under TCG
 * crashes setting MSI-X vector notifiers for vhost-user; {@code no_timer_check} because under TCG on a
 * busy host the kernel's IO-APIC timer check can miss ticks and panic at boot; the serial console is stdout.
 */
public final class QemuGuest implements AutoCloseable {

    public static final String GUEST_MAC = "52:54:00:12:34:56";
    /** Boot to link-up takes ~6 s (11 s cold) under TCG on 2 shared CPUs; leave room for a busy machine. */
    public static final Duration BOOT_TIMEOUT = Duration.ofSeconds(90);

    // Both end at the line break: output arrives in chunks, and "rx_packets=1" may be the start of "=12".
    private static final Pattern RESULT = Pattern.compile("JVTEST (PASS|FAIL)([^\\r\\n]*)\\r?\\n");
    private static final Pattern RX = Pattern.compile("JVTEST RX rx_packets=(\\d+) tx_packets=(\\d+)\\r?\\n");
    private static final Pattern RXQ = Pattern.compile("JVTEST RXQ rxq_packets=([\\d,]+)\\r?\\n");

    private static final Pattern LINK_UP = Pattern.compile("JVTEST LINKUP");
    private static final Pattern FEATURES = Pattern.compile("JVTEST FEATURES (\\S*)\\r?\\n");
    /** VIRTIO_F_RING_PACKED's bit, i.e. its index in the guest's feature string. */
    private static final int RING_PACKED_BIT = 34;
    private static final Pattern RX_DELTA = Pattern.compile("rx_delta=(\\d+)");

    private final ProcessUnderTest process;

    private QemuGuest(ProcessUnderTest process) {
        this.process = process;
    }

    /**
     * @param qemuListens QEMU creates the socket ({@code server=on,wait=off}) and the back-end connects;
     *                    otherwise QEMU connects and re-connects after a back-end restart ({@code reconnect=1})
     * @param guestArgs   {@code jvtest.*} kernel parameters, see scripts/build-guest.sh
     */
    public static QemuGuest start(String name, Path socket, int queues, boolean qemuListens, String guestArgs,
                                  Path logDir) {
        return start(name, socket, queues, qemuListens, guestArgs, logDir, "");
    }

    /**
     * As above, with extra {@code virtio-net-pci} properties ({@code nicExtra}, e.g.
     * {@code ",mrg_rxbuf=off"} or {@code ",csum=off,guest_tso4=off"}) that change what is negotiated.
     */
    public static QemuGuest start(String name, Path socket, int queues, boolean qemuListens, String guestArgs,
                                  Path logDir, String nicExtra) {
        return start(name, socket, queues, qemuListens, guestArgs, logDir, nicExtra, MEMFD);
    }

    /** The default guest RAM: a shared memfd of 4 KiB pages (the back-end can only map shared memory). */
    /**
     * {@code -smp} for a one-vCPU guest: one vCPU online, two possible. TCG emits the guest's memory
     * barriers (and makes its locked instructions atomic) only when the machine may have more than one
     * vCPU; with {@code -smp 1} it leaves them out, so the guest's smp_mb between writing used_event and
     * re-reading used->idx is no barrier on the host. A back-end in another process then races it like a
     * Dekker pair without fences: it publishes a used entry, reads the used_event the guest has not yet
     * made visible, skips the interrupt, and the guest, having read the old used->idx, waits for ever
     * (seen with scripts/bench-blk.sh at 16 requests in flight: about one stall per 150,000 requests with
     * jvhost, whose signalling is correct; none in 12 rounds with this setting). KVM guests have real barriers.
     */
    public static final String ONE_VCPU = "1,maxcpus=2";

    public static final String MEMFD = "memory-backend-memfd,id=mem0,size=256M,share=on";

    /**
     * Guest RAM in a file on the hugetlbfs mounted at {@code hugeDir}, preallocated: the back-end gets
     * 2 MiB-page regions whose sizes and mmap offsets QEMU aligns to the huge page size.
     */
    public static String hugepages(Path hugeDir) {
        return "memory-backend-file,id=mem0,size=256M,mem-path=" + hugeDir + ",share=on,prealloc=on";
    }

    /** As above, with the {@code -object} that backs guest RAM ({@code id=mem0}): {@link #MEMFD} or {@link #hugepages(Path)}. */
    public static QemuGuest start(String name, Path socket, int queues, boolean qemuListens, String guestArgs,
                                  Path logDir, String nicExtra, String memoryBackend) {
        return start(name, socket, queues, qemuListens, guestArgs, logDir, nicExtra, memoryBackend, List.of());
    }

    /**
     * As above, with {@code extraArgs} appended to QEMU's command line (e.g. {@code -qmp} and
     * {@code -incoming} for a migration; a destination must otherwise be started exactly like its source).
     */
    public static QemuGuest start(String name, Path socket, int queues, boolean qemuListens, String guestArgs,
                                  Path logDir, String nicExtra, String memoryBackend, List<String> extraArgs) {
        String chardev = "socket,id=c0,path=" + socket + (qemuListens ? ",server=on,wait=off" : ",reconnect=1");
        String nic = "virtio-net-pci,netdev=n0,mac=" + GUEST_MAC + ",vectors=0" + (queues > 1 ? ",mq=on" : "") + nicExtra;
        List<String> cmd = new ArrayList<>(List.of(Peers.QEMU,
                "-accel", "tcg,thread=multi", "-cpu", "max", "-m", "256M",
                // One vCPU per queue pair: the guest sends from each vCPU, which virtio_net maps to its own queue.
                "-smp", queues > 1 ? String.valueOf(queues) : ONE_VCPU,
                "-machine", "q35,memory-backend=mem0",
                "-object", memoryBackend,
                "-chardev", chardev,
                "-netdev", "vhost-user,id=n0,chardev=c0,queues=" + queues,
                "-device", nic,
                "-kernel", GuestImage.kernel().toString(),
                "-initrd", GuestImage.initramfs().toString(),
                "-append", "console=ttyS0 quiet panic=-1 no_timer_check jvtest.queues=" + queues + " " + guestArgs,
                "-nodefaults", "-no-reboot", "-display", "none", "-serial", "stdio"));
        cmd.addAll(extraArgs);
        return new QemuGuest(ProcessUnderTest.start(name, cmd, logDir));
    }

    public ProcessUnderTest process() {
        return process;
    }

    /**
     * Waits for the burst-mode verdict line; returns e.g. {@code "PASS rx_delta=20 tx_delta=20"}.
     * Fails early if {@code backend} exits meanwhile.
     */
    public String awaitResult(ProcessUnderTest backend) {
        Matcher m = process.await(RESULT, 0, BOOT_TIMEOUT, backend);
        return m.group(1) + m.group(2);
    }

    /** Guest arguments for burst mode: send {@code frames} frames, then print the verdict and power off. */
    public static String burst(int frames) {
        return "jvtest.mode=burst jvtest.count=" + frames;
    }

    /**
     * Burst mode: asserts the verdict is PASS with at least {@code frames} frames back (its rx_delta) and
     * that QEMU exits 0 after the guest powers off; returns the verdict. {@code who} names the guest in
     * the messages, which carry both processes' output.
     */
    public String assertBurstPassed(int frames, String who, ProcessUnderTest backend) {
        String result = awaitResult(backend);
        assertTrue(result.startsWith("PASS"), who + " reported " + result + process.tail() + backend.tail());
        Matcher m = RX_DELTA.matcher(result);
        assertTrue(m.find(), "no rx_delta in '" + result + "'");
        long delta = Long.parseLong(m.group(1));
        assertTrue(delta >= frames, who + " got " + delta + " of " + frames + " frames back");
        assertEquals(0, process.awaitExit(Duration.ofSeconds(30)), "QEMU exit status after guest poweroff");
        return result;
    }

    /**
     * Asserts what the guest's own virtio driver negotiated for VIRTIO_F_RING_PACKED, from the guest's
     * output after its verdict: the guest prints /sys/class/net/eth0/device/features at boot ('0'/'1' per
     * feature bit, bit N at index N), and index 34 must be '1' for a packed-ring guest and '0' for a split
     * one. jvhost's log says which layout it started; this is the other end's word for it.
     */
    public static void assertPackedRing(boolean packed, String guestOutput) {
        Matcher m = FEATURES.matcher(guestOutput);
        assertTrue(m.find(), "the guest printed no FEATURES line");
        String features = m.group(1);
        assertTrue(features.length() > RING_PACKED_BIT && features.chars().allMatch(c -> c == '0' || c == '1'),
                "the guest's feature string '" + features + "' is not one '0'/'1' per bit");
        assertEquals(packed ? '1' : '0', features.charAt(RING_PACKED_BIT),
                "bit 34 (VIRTIO_F_RING_PACKED) of the features the guest negotiated, " + features);
    }

    /** Waits for the guest's link-up, i.e. DRIVER_OK: the memory table and the vrings are set. */
    public void awaitLinkUp(ProcessUnderTest backend) {
        process.await(LINK_UP, 0, BOOT_TIMEOUT, backend);
    }

    /** In periodic mode: the guest's eth0 rx_packets from the next report printed after {@code mark}. */
    public long nextRxPackets(int mark, Duration timeout, ProcessUnderTest backend) {
        return Long.parseLong(process.await(RX, mark, timeout, backend).group(1));
    }

    /** Waits (at most {@code timeout}) until a periodic report shows rx_packets above {@code value}. */
    public long awaitRxAbove(long value, Duration timeout, ProcessUnderTest backend) {
        long deadline = System.nanoTime() + timeout.toNanos();
        int mark = process.mark();
        while (true) {
            Duration left = Duration.ofNanos(deadline - System.nanoTime());
            if (left.isNegative() || left.isZero()) {
                throw new AssertionError("guest rx_packets did not rise above " + value + " within " + timeout + process.tail());
            }
            Matcher m = process.await(RX, mark, left, backend);
            long rx = Long.parseLong(m.group(1));
            if (rx > value) {
                return rx;
            }
            mark = m.end();
        }
    }

    /**
     * In periodic mode with several queues: waits (at most {@code timeout}) until a report shows every
     * receive queue's packet count above its value in {@code values}; returns those counts.
     */
    public long[] awaitRxQueuesAbove(long[] values, Duration timeout, ProcessUnderTest backend) {
        long deadline = System.nanoTime() + timeout.toNanos();
        int mark = process.mark();
        while (true) {
            Duration left = Duration.ofNanos(deadline - System.nanoTime());
            if (left.isNegative() || left.isZero()) {
                throw new AssertionError("the guest's per-queue rx_packets did not all rise above "
                        + Arrays.toString(values) + " within " + timeout + process.tail());
            }
            Matcher m = process.await(RXQ, mark, left, backend);
            long[] counts = Arrays.stream(m.group(1).split(",")).mapToLong(Long::parseLong).toArray();
            if (counts.length == values.length && IntStream.range(0, counts.length).allMatch(i -> counts[i] > values[i])) {
                return counts;
            }
            mark = m.end();
        }
    }

    @Override
    public void close() {
        process.close();
    }
}
