package org.jvhost.host.it;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.jvhost.engine.server.Host;
import org.jvhost.spi.DeviceContext;

/**
 * Config-change notices and inflight tracking with QEMU 7.2's {@code vhost-user-blk-pci} and a Linux
 * guest, over a minimal disk device in test code ({@link TestBlk.RamBlk}: enough virtio-blk for the guest's dd,
 * and no more; the real disk is the devices-blk plugin).
 *
 * <ol>
 * <li>The guest sees /sys/block/vda/size grow after {@code resize}: CONFIG_CHANGE_MSG on the back-end
 *     channel, QEMU's GET_CONFIG, the guest's config interrupt.</li>
 * <li>The guest writes rounds of 256 KiB (eight O_DIRECT writers in parallel), each read back whole with
 *     caches dropped. The
 *     device holds every other write and completes the others. The host is then closed with the held
 *     writes in flight (no GET_VRING_BASE: for QEMU the same as a killed back-end) and a new one, a new
 *     device over the same disk, takes the socket; QEMU ({@code reconnect=1}) gives it the inflight
 *     region it kept and the held writes are replayed. Twenty times; then the disk grows again, the
 *     guest's signal to stop, and the disk must hold exactly what the guest wrote (MD5 of the area).</li>
 * <li>{@link #killedUnderIoAndRestartedTwentyTimes}: the same over a file, with the back-end in a JVM
 *     of its own that is SIGKILLed twenty times under the guest's I/O (a disk that takes every request
 *     and serves them last first, 1 ms each, so requests are in flight and complete out of order); the
 *     growth of the file is the resize. Every acknowledged write must be in the file (MD5 of the area)
 *     and every request in flight must complete (the guest finishes).</li>
 * <li>{@link #theShippedBlkDeviceKilledUnderIoAndRestartedTwentyTimes}: the same with what users run,
 *     {@code jvhost serve --device blk:...} (the devices-blk plugin and its I/O threads).</li>
 * </ol>
 * Why the restart tests can fail: without the replay QEMU restarts the ring at its used index, which
 * re-serves requests already completed (the guest's virtio ring reports "id N is not a head!") and never
 * serves the ones in flight that lie before it, so the guest's dd never finishes (virtio-blk has no
 * request timeout) and PASS never comes; with the replay disabled, both fail so. A lost or misplaced
 * write fails the guest's compare and the disk's checksum.
 *
 * <p>The guest is the project's test image with an overlay appended to its initramfs (the kernel
 * unpacks concatenated cpio archives in order): virtio_blk.ko and an /init of its own.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class InflightBlkIT {
    private static final int SECTOR = TestBlk.SECTOR;
    static final long START_BYTES = 8L << 20;
    private static final long GROWN_BYTES = 16L << 20;
    static final long DISK_BYTES = GROWN_BYTES + (8L << 20);
    private static final Duration BOOT = Duration.ofSeconds(90);
    private static final int RESTARTS = 20;

    @RegisterExtension
    final PeerScope scope = new PeerScope();

    private static final String INIT = String.join("\n",
            "#!/bin/busybox sh",
            "/bin/busybox --install -s /bin",
            "export PATH=/bin:/sbin",
            "mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev 2>/dev/null",
            "say() { echo \"JVTEST $*\"; }",
            "fail() { say \"FAIL $*\"; sync; poweroff -f; sleep 5; }",
            "for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk; do",
            "  insmod /lib/modules/$m.ko 2>/dev/null",
            "done",
            "i=0; while [ ! -e /sys/block/vda/size ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done",
            "[ -e /sys/block/vda/size ] || fail \"no /dev/vda\"",
            "s0=$(cat /sys/block/vda/size); say \"SIZE $s0\"",
            "i=0; while [ \"$(cat /sys/block/vda/size)\" = \"$s0\" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done",
            "say \"RESIZED $(cat /sys/block/vda/size)\"",
            // rounds of 256 KiB written into a 4 MiB area at 4 MiB by eight O_DIRECT writers in parallel
            // (32 KiB each, 4 KiB per request), so eight requests are in flight at a time; each round read
            // back whole (caches dropped), until the disk grows again: the test's signal that its restarts
            // are over
            "s1=$(cat /sys/block/vda/size)",
            "dd if=/dev/zero of=/tmp/e bs=4096 count=1024 2>/dev/null",
            "r=0",
            "while [ \"$(cat /sys/block/vda/size)\" = \"$s1\" ]; do",
            "  dd if=/dev/urandom of=/tmp/p bs=4096 count=64 2>/dev/null",
            "  slot=$((r % 16))",
            "  pids=''; j=0",
            "  while [ $j -lt 8 ]; do",
            "    dd if=/tmp/p of=/dev/vda bs=4096 skip=$((j * 8)) seek=$((1024 + slot * 64 + j * 8)) count=8 oflag=direct 2>/tmp/dd$j &",
            "    pids=\"$pids $!\"; j=$((j + 1))",
            "  done",
            "  for p in $pids; do wait $p || fail \"round $r: write: $(cat /tmp/dd*)\"; done",
            "  dd if=/tmp/p of=/tmp/e bs=4096 seek=$((slot * 64)) conv=notrunc 2>/dev/null",
            "  echo 3 > /proc/sys/vm/drop_caches",
            "  dd if=/dev/vda of=/tmp/q bs=4096 skip=1024 count=1024 2>/dev/null || fail \"round $r: read back\"",
            "  cmp /tmp/e /tmp/q > /dev/null || fail \"round $r: read back differs\"",
            "  say \"ROUND $r\"",
            "  r=$((r + 1))",
            "done",
            "say \"PASS $(md5sum < /tmp/e | cut -d' ' -f1) rounds=$r\"",
            "sync; poweroff -f",
            "");

    /** The test image's initramfs with an overlay appended: virtio_blk.ko and {@link #INIT}. */
    private Path initramfs() throws Exception {
        return initramfs(scope, INIT);
    }

    /** The test image's initramfs with an overlay appended: virtio_blk.ko and {@code init} as /init. */
    static Path initramfs(PeerScope scope, String init) throws Exception {
        Path base = GuestImage.initramfs();
        String kver = Files.readString(base.resolveSibling("kernel-version")).strip();
        Path stage = scope.logs().resolve("overlay");
        Files.createDirectories(stage.resolve("lib/modules"));
        Files.copy(Path.of("/lib/modules", kver, "kernel/drivers/block/virtio_blk.ko"),
                stage.resolve("lib/modules/virtio_blk.ko"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        Files.writeString(stage.resolve("init"), init);
        stage.resolve("init").toFile().setExecutable(true);
        Path overlay = scope.logs().resolve("overlay.cpio.gz");
        try (ProcessUnderTest cpio = ProcessUnderTest.start("cpio", List.of("/bin/sh", "-c",
                "cd '" + stage + "' && find init lib | cpio -o -H newc --quiet | gzip -1 > '" + overlay + "'"),
                scope.logs())) {
            assertTrue(cpio.awaitExit(Duration.ofSeconds(30)) == 0, "cpio failed" + cpio.tail());
        }
        Path combined = scope.logs().resolve("initramfs-blk.cpio.gz");
        Files.write(combined, Files.readAllBytes(base));
        Files.write(combined, Files.readAllBytes(overlay), StandardOpenOption.APPEND);
        return combined;
    }

    /** Starts the back-end JVM ({@link TestBlk#main}) on {@code sock} over {@code file}. */
    private ProcessUnderTest serveInChildJvm(String name, Path sock, Path file) {
        return scope.track(ProcessUnderTest.start(name, List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx128m",
                "-cp", System.getProperty("java.class.path"), TestBlk.class.getName(),
                sock.toString(), file.toString()), scope.logs()));
    }

    /** A back-end in a process of its own, serving {@code sock} over {@code file}. */
    private interface BackEnd {
        /** Starts it, without waiting. */
        ProcessUnderTest start(String name, Path sock, Path file);

        /** Returns once {@code p}, started on {@code sock}, serves. */
        void awaitServing(ProcessUnderTest p, Path sock);

        /** Requests the kills must leave in flight, in all, for the replay to count as exercised. */
        int minReplayed();

        /** Grows the disk to {@code bytes} and has the guest told. */
        void resize(Path sock, Path file, long bytes) throws Exception;
    }

    @Test
    void killedUnderIoAndRestartedTwentyTimes() throws Exception {
        killUnderIo("the test disk", new BackEnd() {
            @Override
            public ProcessUnderTest start(String name, Path sock, Path file) {
                return serveInChildJvm(name, sock, file);
            }

            @Override
            public void awaitServing(ProcessUnderTest p, Path sock) {
                p.await(Pattern.compile("SERVING"), 0, Duration.ofSeconds(30));
            }

            /** One per kill: the test disk serves last first, 1 ms each, so requests are always in flight. */
            @Override
            public int minReplayed() {
                return RESTARTS;
            }

            @Override
            public void resize(Path sock, Path file, long bytes) throws IOException {
                grow(file, bytes); // the test disk sees its file grow and tells the guest
            }
        });
    }

    /**
     * The same with the shipped host: {@code java -jar jvhost.jar serve --device blk:...}, the devices-blk
     * plugin with its I/O threads, SIGKILLed twenty times under the guest's I/O; resized with
     * {@code jvhost ctl resize}.
     */
    @Test
    void theShippedBlkDeviceKilledUnderIoAndRestartedTwentyTimes() throws Exception {
        killUnderIo("jvhost serve with devices-blk", new BackEnd() {
            @Override
            public ProcessUnderTest start(String name, Path sock, Path file) {
                return scope.track(ProcessUnderTest.start(name, Serve.command(Serve.ON_BACK_END_CPU,
                        List.of("--control", control(sock).toString(), "--device", "blk:socket=" + sock + ",path=" + file
                                + ",uring=on")), scope.logs()));
            }

            @Override
            public void awaitServing(ProcessUnderTest p, Path sock) {
                Peers.awaitNewFile(sock, null, Duration.ofSeconds(30), p); // each back-end has a socket path of its own
                p.await(Pattern.compile("on io_uring"), 0, Duration.ofSeconds(5));
            }

            /**
             * None required: on io_uring a page-cache write completes within microseconds of its pop, so a
             * kill rarely finds one in flight (5 in 20 kills in one run); the test disk's variant is the
             * one that exercises the replay. Here the point is what users run, killed under I/O.
             */
            @Override
            public int minReplayed() {
                return 0;
            }

            /** Each back-end has its control socket next to its own (two run at once, see killUnderIo). */
            private Path control(Path sock) {
                return sock.resolveSibling(sock.getFileName() + ".ctl");
            }

            @Override
            public void resize(Path sock, Path file, long bytes) {
                try (ProcessUnderTest ctl = ProcessUnderTest.start("ctl", List.of(Serve.java(), "-jar",
                        Serve.jar().toString(), "ctl", "--control", control(sock).toString(), "resize", "blk@" + sock,
                        String.valueOf(bytes)), scope.logs())) {
                    assertTrue(ctl.awaitExit(Duration.ofSeconds(30)) == 0, "jvhost ctl resize" + ctl.tail());
                }
            }
        });
    }

    private void killUnderIo(String what, BackEnd backEnd) throws Exception {
        Peers.assumeInstalled(Peers.QEMU, "qemu-system-x86");
        org.junit.jupiter.api.Assumptions.assumeTrue(Backend.selected() instanceof JvhostBackend,
                "jvhost's engine is the back-end here; there is no DPDK counterpart to run");
        Path initrd = initramfs();
        Path link = scope.sockets().resolve("blk.sock");
        Path image = scope.sockets().resolve("disk.img");
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(START_BYTES);
        }
        long t0 = System.nanoTime();
        // QEMU's socket path is a symlink to the serving back-end's own socket: the next back-end starts
        // (a JVM takes seconds) while the current one serves, and a kill then repoints the link, so QEMU's
        // reconnect (every second) finds the new one at once
        ProcessUnderTest back = backEnd.start("jvhost-0", socket(0), image);
        backEnd.awaitServing(back, socket(0));
        pointTo(link, socket(0));
        // the next two back-ends start meanwhile: a JVM takes seconds to serve, a round of the loop less
        java.util.ArrayDeque<ProcessUnderTest> starting = new java.util.ArrayDeque<>();
        starting.add(backEnd.start("jvhost-1", socket(1), image));
        starting.add(backEnd.start("jvhost-2", socket(2), image));
        ProcessUnderTest qemu = startQemu(link, initrd);
        qemu.await(Pattern.compile("JVTEST SIZE " + START_BYTES / SECTOR + "\\r?\\n"), 0, BOOT, back);
        backEnd.resize(socket(0), image, GROWN_BYTES);
        qemu.await(Pattern.compile("JVTEST RESIZED " + GROWN_BYTES / SECTOR + "\\r?\\n"), 0, Duration.ofSeconds(30), back);
        qemu.await(Pattern.compile("JVTEST ROUND 0\\r?\\n"), 0, Duration.ofSeconds(60), back);
        java.util.Random random = new java.util.Random(13);
        int replayed = 0;
        for (int k = 1; k <= RESTARTS; k++) {
            Thread.sleep(200 + random.nextInt(400)); // under the guest's I/O: it writes and reads without pause
            ProcessUnderTest next = starting.remove();
            backEnd.awaitServing(next, socket(k));
            back.kill(); // SIGKILL
            replayed += replayed(back);
            pointTo(link, socket(k));
            back = next;
            back.await(Pattern.compile("front-end connected"), 0, Duration.ofSeconds(30));
            if (k + 2 <= RESTARTS) {
                starting.add(backEnd.start("jvhost-" + (k + 2), socket(k + 2), image));
            }
            assertTrue(qemu.isAlive(), "QEMU survived kill " + k + qemu.tail());
        }
        backEnd.resize(socket(RESTARTS), image, GROWN_BYTES + (8L << 20)); // the guest's signal to finish
        Matcher pass = qemu.await(Pattern.compile("JVTEST (PASS|FAIL)([^\\r\\n]*)\\r?\\n"), 0, Duration.ofSeconds(90), back);
        assertTrue(pass.group(1).equals("PASS"), "guest: " + pass.group(0) + qemu.tail());
        String guestSum = pass.group(2).strip().split(" ")[0];
        byte[] area = new byte[4 << 20];
        try (FileChannel f = FileChannel.open(image)) {
            ByteBuffer b = ByteBuffer.wrap(area);
            while (b.hasRemaining() && f.read(b, (4L << 20) + b.position()) > 0) {
                // read the written area whole
            }
        }
        String diskSum = HexFormat.of().formatHex(MessageDigest.getInstance("MD5").digest(area));
        assertTrue(diskSum.equals(guestSum), "the file holds what the guest wrote: " + diskSum + " vs " + guestSum);
        assertTrue(qemu.awaitExit(Duration.ofSeconds(30)) == 0, "QEMU exits after the guest powers off" + qemu.tail());
        replayed += replayed(back);
        System.out.printf("InflightBlkIT, %s: %d SIGKILLs, %d requests replayed in all, guest %s, %d s%n", what,
                RESTARTS, replayed, pass.group(2).strip(), TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - t0));
        assertTrue(replayed >= backEnd.minReplayed(), "the kills left requests in flight to replay (" + replayed
                + " in " + RESTARTS + " restarts), so the replay was exercised");
    }

    private static final Pattern IN_FLIGHT = Pattern.compile("(\\d+) requests were in flight");

    /** The requests {@code back} replayed at its start (its log says so once its ring started). */
    private static int replayed(ProcessUnderTest back) {
        Matcher m = IN_FLIGHT.matcher(back.outputSince(0));
        return m.find() ? Integer.parseInt(m.group(1)) : 0;
    }

    /** The k-th back-end's socket. */
    private Path socket(int k) {
        return scope.sockets().resolve("blk-" + k + ".sock");
    }

    /** Points the symlink {@code link} at {@code target}, atomically (a new link renamed over the old). */
    private static void pointTo(Path link, Path target) throws IOException {
        Path tmp = link.resolveSibling(link.getFileName() + ".new");
        Files.deleteIfExists(tmp);
        Files.createSymbolicLink(tmp, target.getFileName());
        Files.move(tmp, link, java.nio.file.StandardCopyOption.ATOMIC_MOVE, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    }

    private static void grow(Path image, long bytes) throws IOException {
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(bytes);
        }
    }

    private ProcessUnderTest startQemu(Path sock, Path initrd) {
        return startQemu(scope, sock, initrd);
    }

    /** QEMU with one {@code vhost-user-blk-pci} on {@code sock} ({@code reconnect=1}), booting {@code initrd}. */
    static ProcessUnderTest startQemu(PeerScope scope, Path sock, Path initrd) {
        return scope.track(ProcessUnderTest.start("qemu", List.of(Peers.QEMU,
                "-accel", "tcg,thread=multi", "-cpu", "max", "-m", "256M", "-smp", QemuGuest.ONE_VCPU,
                "-machine", "q35,memory-backend=mem0",
                "-object", QemuGuest.MEMFD,
                "-chardev", "socket,id=c1,path=" + sock + ",reconnect=1",
                "-device", "vhost-user-blk-pci,chardev=c1,num-queues=1,vectors=0",
                "-kernel", GuestImage.kernel().toString(), "-initrd", initrd.toString(),
                "-append", "console=ttyS0 quiet panic=-1 no_timer_check",
                "-nodefaults", "-no-reboot", "-display", "none", "-serial", "stdio"), scope.logs()));
    }

    @Test
    void resizeReachesTheGuestAndWritesInFlightSurviveTwentyRestarts() throws Exception {
        Peers.assumeInstalled(Peers.QEMU, "qemu-system-x86");
        org.junit.jupiter.api.Assumptions.assumeTrue(Backend.selected() instanceof JvhostBackend,
                "jvhost's engine in this JVM is the back-end here; there is no DPDK counterpart to run");
        Path initrd = initramfs();
        Path sock = scope.sockets().resolve("blk.sock");
        TestBlk.Disk disk = new TestBlk.Disk();
        Host first = new Host(1);
        DeviceContext ctx1 = first.newContext("ramblk");
        TestBlk.RamBlk dev1 = new TestBlk.RamBlk(disk, ctx1);
        first.addDevice(ctx1, dev1, sock, Host.Mode.LISTEN);
        long t0 = System.nanoTime();
        ProcessUnderTest qemu = scope.track(ProcessUnderTest.start("qemu", List.of(Peers.QEMU,
                "-accel", "tcg,thread=multi", "-cpu", "max", "-m", "256M", "-smp", QemuGuest.ONE_VCPU,
                "-machine", "q35,memory-backend=mem0",
                "-object", QemuGuest.MEMFD,
                "-chardev", "socket,id=c1,path=" + sock + ",reconnect=1",
                "-device", "vhost-user-blk-pci,chardev=c1,num-queues=1,vectors=0",
                "-kernel", GuestImage.kernel().toString(), "-initrd", initrd.toString(),
                "-append", "console=ttyS0 quiet panic=-1 no_timer_check",
                "-nodefaults", "-no-reboot", "-display", "none", "-serial", "stdio"), scope.logs()));
        Host second = null;
        try {
            qemu.await(Pattern.compile("JVTEST SIZE " + START_BYTES / SECTOR + "\\r?\\n"), 0, BOOT);
            dev1.resize(GROWN_BYTES);
            qemu.await(Pattern.compile("JVTEST RESIZED " + GROWN_BYTES / SECTOR + "\\r?\\n"), 0, Duration.ofSeconds(30));
            qemu.await(Pattern.compile("JVTEST ROUND 0\\r?\\n"), 0, Duration.ofSeconds(60));
            TestBlk.RamBlk dev = dev1;
            Host current = first;
            int inFlight = 0;
            for (int k = 0; k < RESTARTS; k++) {
                dev.hold = true;
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (dev.held.get() < 1 && System.nanoTime() < deadline) {
                    Thread.sleep(5);
                }
                assertTrue(dev.held.get() >= 1, "restart " + k + ": the guest's writes reached the device (held "
                        + dev.held + ", served " + dev.served + ")" + qemu.tail());
                inFlight += dev.held.get();
                current.close(); // the writes it held are in flight: no used entry was ever written for them
                current = new Host(1);
                second = current;
                DeviceContext ctx = current.newContext("ramblk");
                dev = new TestBlk.RamBlk(disk, ctx);
                current.addDevice(ctx, dev, sock, Host.Mode.LISTEN);
                deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (dev.served.get() == 0 && System.nanoTime() < deadline) {
                    assertTrue(qemu.isAlive(), "QEMU exited" + qemu.tail());
                    Thread.sleep(5);
                }
                assertTrue(dev.served.get() > 0, "restart " + k + ": QEMU came back and the device serves" + qemu.tail());
            }
            dev.resize(GROWN_BYTES + (8L << 20)); // the guest's signal to finish, over the last connection's channel
            Matcher pass = qemu.await(Pattern.compile("JVTEST (PASS|FAIL)([^\\r\\n]*)\\r?\\n"), 0, Duration.ofSeconds(60));
            assertTrue(pass.group(1).equals("PASS"), "guest: " + pass.group(0) + qemu.tail());
            String guestSum = pass.group(2).strip().split(" ")[0];
            byte[] area = java.util.Arrays.copyOfRange(disk.bytes, 4 << 20, 8 << 20);
            String diskSum = HexFormat.of().formatHex(MessageDigest.getInstance("MD5").digest(area));
            assertTrue(diskSum.equals(guestSum), "the disk holds what the guest wrote: " + diskSum + " vs " + guestSum);
            assertTrue(qemu.awaitExit(Duration.ofSeconds(30)) == 0, "QEMU exits after the guest powers off" + qemu.tail());
            System.out.printf("InflightBlkIT: %d restarts with %d requests in flight in all, guest %s, %d s%n", RESTARTS,
                    inFlight, pass.group(2).strip(), TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - t0));
        } finally {
            first.close();
            if (second != null) {
                second.close();
            }
        }
    }
}
