package org.jvhost.host.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The {@code blk} device, on io_uring, under a QEMU guest ({@code vhost-user-blk-pci}), next to a {@code loopback} NIC
 * served by the same jvhost on ONE worker: the guest writes random data with dd buffered and with
 * O_DIRECT, reads it back both ways and with one 1 MiB O_DIRECT read (ring-size indirect tables), and
 * the host file holds it; the disk has the two queues asked
 * for; then, for a fixed time (a TCG guest's disk rounds take seconds each on a loaded machine, so
 * a fixed amount of work timed out), the guest keeps the disk busy with two O_DIRECT loops while it
 * pings through the NIC every 0.2 s: every echo must come back, and the rewritten MiB must be in the file. A second test: a read-only disk refuses the guest's write.
 */
class BlkGuestIT {
    private static final Pattern BLK = Pattern.compile("JVTEST BLK queues=(\\d+) ro=(\\d) sectors=(\\d+) maxseg=(\\d+)\\r?\\n");
    private static final Pattern PASS = Pattern.compile("JVTEST (PASS|FAIL)([^\\r\\n]*)\\r?\\n");
    private static final Pattern SAT = Pattern.compile(
            "JVTEST SAT rx_delta=(\\d+) tx_delta=(\\d+) pings=(\\d+) reads=(\\d+) writes=(\\d+) cs=(\\d+)\\r?\\n");
    private static final int MIB = 1 << 20;
    /** Seconds the guest keeps its disk saturated while it pings. */
    private static final int SATURATION_S = 8;

    @RegisterExtension
    final PeerScope scope = new PeerScope();

    @Test
    void guestWritesAndReadsTheFileOnTwoQueuesWhileTheNicOnTheSameWorkerKeepsItsTraffic() throws Exception {
        Peers.assumeInstalled(Peers.QEMU, "qemu-system-x86");
        Path disk = disk(8);
        ProcessUnderTest back = jvhost(disk, "queues=2");
        QemuGuest guest = scope.track(QemuGuest.start("qemu", nicSocket(), 2, false,
                "jvtest.mode=blk jvtest.satsec=" + SATURATION_S, scope.logs(), "", QemuGuest.MEMFD, blkArgs(2)));
        Matcher blk = guest.process().await(BLK, 0, QemuGuest.BOOT_TIMEOUT, back);
        assertEquals("2", blk.group(1), "the guest's disk queues");
        assertEquals("0", blk.group(2));
        assertEquals(String.valueOf(8 * MIB / 512), blk.group(3), "capacity in sectors");
        // seg_max = ring - 2: the guest's 1 MiB O_DIRECT read (256 pages) then comes as requests of 126
        // segments, each in one indirect table of 128 = ring-size entries, which the PASS below reads back
        assertEquals("126", blk.group(4), "the guest's max_segments (seg_max)");
        Matcher pass = guest.process().await(PASS, 0, Duration.ofSeconds(60), back);
        assertEquals("PASS", pass.group(1), pass.group(0) + guest.process().tail() + back.tail());
        String md5 = pass.group(2).replaceAll(".*md5=", "").trim();
        assertEquals(md5, md5(disk, 0, MIB), "the buffered write in the host file");
        assertEquals(md5, md5(disk, MIB, MIB), "the O_DIRECT write in the host file");
        Matcher sat = guest.process().await(SAT, 0, Duration.ofSeconds(SATURATION_S + 60), back);
        int pings = Integer.parseInt(sat.group(3));
        assertTrue(pings >= 5, "the guest pinged throughout the saturation: " + sat.group(0));
        assertEquals(pings, Integer.parseInt(sat.group(2)), "one echo sent per ping: " + sat.group(0));
        assertEquals(pings, Integer.parseInt(sat.group(1)), "every echo came back while the disk was busy: " + sat.group(0));
        assertTrue(Integer.parseInt(sat.group(4)) >= 1 && Integer.parseInt(sat.group(5)) >= 1,
                "the disk was busy (whole rounds of reads and writes): " + sat.group(0));
        System.out.printf("BlkGuestIT saturation: %s%n", sat.group(0).strip());
        assertEquals(0, guest.process().awaitExit(Duration.ofSeconds(30)), "QEMU exit status after guest poweroff");
        assertEquals(md5, md5(disk, 2 * MIB, MIB), "the saturating writes in the host file");
    }

    @Test
    void aReadOnlyDiskRefusesTheGuestsWrite() throws Exception {
        Peers.assumeInstalled(Peers.QEMU, "qemu-system-x86");
        Path disk = disk(4);
        byte[] before = Files.readAllBytes(disk);
        ProcessUnderTest back = jvhost(disk, "readonly=on");
        QemuGuest guest = scope.track(QemuGuest.start("qemu", nicSocket(), 1, false,
                "jvtest.mode=blk jvtest.blkro=1", scope.logs(), "", QemuGuest.MEMFD, blkArgs(1)));
        Matcher blk = guest.process().await(BLK, 0, QemuGuest.BOOT_TIMEOUT, back);
        assertEquals("1", blk.group(2), "the guest sees a read-only disk");
        Matcher pass = guest.process().await(PASS, 0, Duration.ofSeconds(60), back);
        assertEquals("PASS", pass.group(1), pass.group(0) + guest.process().tail());
        assertEquals(md5(disk, 0, MIB), pass.group(2).replaceAll(".*md5=", "").trim(), "what the guest read");
        assertEquals(0, guest.process().awaitExit(Duration.ofSeconds(30)));
        assertTrue(java.util.Arrays.equals(before, Files.readAllBytes(disk)), "the file is unchanged");
    }

    private Path nicSocket() {
        return scope.sockets().resolve("nic.sock");
    }

    private Path blkSocket() {
        return scope.sockets().resolve("blk.sock");
    }

    /** A disk file of {@code mib} MiB holding a non-zero pattern, so a read of zeroes would show. */
    private Path disk(int mib) throws IOException {
        Path disk = scope.sockets().resolve("disk.img");
        byte[] pattern = new byte[mib * MIB];
        for (int i = 0; i < pattern.length; i++) {
            pattern[i] = (byte) (i * 31 + 7);
        }
        Files.write(disk, pattern);
        return disk;
    }

    /** jvhost with ONE worker serving a loopback NIC and the blk disk ({@code blkOptions} added). */
    private ProcessUnderTest jvhost(Path disk, String blkOptions) {
        Object stale = Peers.fileKey(blkSocket());
        ProcessUnderTest p = scope.track(ProcessUnderTest.start("jvhost", Serve.command(Serve.ON_BACK_END_CPU,
                List.of("--workers", "1", "--device", "loopback:socket=" + nicSocket() + ",queues=2",
                        "--device", "blk:socket=" + blkSocket() + ",path=" + disk + "," + blkOptions)), scope.logs()));
        Peers.awaitNewFile(blkSocket(), stale, Duration.ofSeconds(30), p);
        // the disk's reads, writes and flushes run on io_uring here (uring=auto; refused, the pool would)
        p.await(Pattern.compile("reads, writes and flushes on io_uring"), 0, Duration.ofSeconds(5));
        return p;
    }

    private List<String> blkArgs(int queues) {
        return List.of("-chardev", "socket,id=c1,path=" + blkSocket() + ",reconnect=1",
                "-device", "vhost-user-blk-pci,chardev=c1,num-queues=" + queues + ",vectors=0");
    }

    private static String md5(Path file, long offset, int len) throws Exception {
        byte[] b = new byte[len];
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "r")) {
            f.seek(offset);
            f.readFully(b);
        }
        return HexFormat.of().formatHex(MessageDigest.getInstance("MD5").digest(b));
    }
}
