package org.jvhost.host.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.Timeout;
import org.jvhost.host.it.TestpmdFrontEnd.PortStats;

/**
 * Front-ends whose memory lives on hugetlbfs (2 MiB pages). The kernel refuses mmap of a hugetlbfs file
 * at an offset that is not a whole number of huge pages and munmap of a length that is not (EINVAL), so
 * the back-end must map such regions in huge-page units (QEMU's vhost code aligns the regions it sends
 * to the RAM block's page size; DPDK's {@code --single-file-segments} sends one file from offset 0).
 * Each test also reads the back-end's
 * {@code /proc/PID/smaps} while the front-end runs and asserts a shared mapping with
 * {@code KernelPageSize 2048 kB}: without it the test could pass on a setup that silently fell back to
 * small pages and proved nothing.
 *
 * <p>Reserves its own huge pages and hugetlbfs mount ({@link Hugepages}) and gives both back in
 * {@code @AfterEach}, after every process that used them has ended.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class HugepagesIT {

    /** 256 MiB of guest memory in 2 MiB pages, plus slack for DPDK's own allocations. */
    private static final long PAGES = 160;
    private static final long MIN_FRAMES = 10_000;
    private static final int GUEST_FRAMES = 20;
    private static final Pattern LINK_UP = Pattern.compile("JVTEST LINKUP");
    private static final Pattern RX_DELTA = Pattern.compile("rx_delta=(\\d+)");

    private final Backend backend = Backend.selected();
    private Path sockets;
    private Path logs;
    private Hugepages huge;
    private ProcessUnderTest back;
    private TestpmdFrontEnd front;
    private QemuGuest guest;

    @BeforeEach
    void setUp(TestInfo info) {
        backend.assumeAvailable();
        sockets = Peers.socketDir();
        logs = Peers.logDir(getClass(), info);
    }

    @AfterEach
    void tearDown() {
        try {
            if (front != null) {
                front.close();
            }
            if (guest != null) {
                guest.close();
            }
        } finally {
            try {
                if (back != null) {
                    back.close();
                }
            } finally {
                // Last: hugetlbfs cannot be unmounted while a process still maps one of its files.
                if (huge != null) {
                    huge.close();
                }
                Peers.deleteTree(sockets);
            }
        }
    }

    @Test
    void testpmdWithHugepagesRoundTrip() {
        Peers.assumeInstalled(Peers.TESTPMD, "dpdk-dev");
        huge = Hugepages.reserve(PAGES, logs);
        Path sock = sockets.resolve("vhost.sock");
        back = backend.start(backend.name(), sock, 1, Backend.Role.LISTEN, logs);
        front = TestpmdFrontEnd.start("testpmd", sock, 1, "io", false, logs, TestpmdFrontEnd.hugepages(huge.dir()));

        front.command("start tx_first 4");
        Peers.sleep(Duration.ofSeconds(2));
        PortStats first = front.portStats();
        List<String> hugeMaps = ProcessResources.hugePageMappings(back.pid());
        Peers.sleep(Duration.ofSeconds(2));
        PortStats second = front.portStats();
        front.stop();

        assertFalse(hugeMaps.isEmpty(), backend.name() + " maps no huge-page memory while testpmd runs on hugepages:"
                + " the test did not exercise hugetlbfs regions" + front.process().tail());
        String where = " (first " + first + ", then " + second + ")";
        assertTrue(second.txPackets() - first.txPackets() >= MIN_FRAMES, "TX stalled" + where + back.tail());
        assertTrue(second.rxPackets() - first.rxPackets() >= MIN_FRAMES, "RX stalled" + where + back.tail());
        assertEquals(0, second.rxErrors(), "RX-errors" + where);
        assertEquals(0, second.txErrors(), "TX-errors" + where);
        assertEquals(0, second.rxNoMbuf(), "RX-nombuf" + where);
    }

    @Test
    void qemuGuestWithHugepagesGetsItsFramesBack() {
        Peers.assumeInstalled(Peers.QEMU, "qemu-system-x86");
        huge = Hugepages.reserve(PAGES, logs);
        Path sock = sockets.resolve("vhost.sock");
        back = backend.start(backend.name(), sock, 1, Backend.Role.LISTEN, logs);
        guest = QemuGuest.start("qemu", sock, 1, false, "jvtest.mode=burst jvtest.count=" + GUEST_FRAMES, logs, "",
                QemuGuest.hugepages(huge.dir()));

        // Link-up means DRIVER_OK: the memory table is mapped. The burst that follows takes ~2 s.
        guest.process().await(LINK_UP, 0, QemuGuest.BOOT_TIMEOUT, back);
        List<String> hugeMaps = ProcessResources.hugePageMappings(back.pid());
        String result = guest.awaitResult(back);

        assertTrue(result.startsWith("PASS"), "guest with hugetlbfs RAM reported " + result + guest.process().tail()
                + back.tail());
        Matcher m = RX_DELTA.matcher(result);
        assertTrue(m.find() && Long.parseLong(m.group(1)) >= GUEST_FRAMES, "guest got too few frames back: " + result);
        assertFalse(hugeMaps.isEmpty(), backend.name() + " maps no huge-page memory while the guest runs on hugetlbfs:"
                + " the test did not exercise hugetlbfs regions" + back.tail());
        assertEquals(0, guest.process().awaitExit(Duration.ofSeconds(30)), "QEMU exit status after guest poweroff");
    }
}
