package org.jvhost.host.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.jvhost.host.it.TestpmdFrontEnd.Interval;

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

    /** Closes the huge pages last (tracked first): hugetlbfs cannot be unmounted while a process maps one of its files. */
    @RegisterExtension
    final PeerScope scope = new PeerScope();
    private final Backend backend = Backend.selected();
    private Hugepages huge;
    private ProcessUnderTest back;
    private TestpmdFrontEnd front;
    private QemuGuest guest;

    @BeforeEach
    void assumeBackend() {
        backend.assumeAvailable();
    }

    @Test
    void testpmdWithHugepagesRoundTrip() {
        Peers.assumeInstalled(Peers.TESTPMD, "dpdk-dev");
        huge = scope.track(Hugepages.reserve(PAGES, scope.logs()));
        Path sock = scope.sockets().resolve("vhost.sock");
        back = scope.track(backend.start(backend.name(), sock, 1, Backend.Role.LISTEN, scope.logs()));
        front = scope.track(TestpmdFrontEnd.start("testpmd", sock, 1, "io", false, scope.logs(),
                TestpmdFrontEnd.hugepages(huge.dir())));

        front.startRoundTrip();
        List<String> hugeMaps = ProcessResources.hugePageMappings(back.pid());
        Interval interval = front.sample(Duration.ofSeconds(2));
        front.stop();

        assertFalse(hugeMaps.isEmpty(), backend.name() + " maps no huge-page memory while testpmd runs on hugepages:"
                + " the test did not exercise hugetlbfs regions" + front.process().tail());
        interval.assertFlowing(MIN_FRAMES, "testpmd on hugepages; ", back);
    }

    @Test
    void qemuGuestWithHugepagesGetsItsFramesBack() {
        Peers.assumeInstalled(Peers.QEMU, "qemu-system-x86");
        huge = scope.track(Hugepages.reserve(PAGES, scope.logs()));
        Path sock = scope.sockets().resolve("vhost.sock");
        back = scope.track(backend.start(backend.name(), sock, 1, Backend.Role.LISTEN, scope.logs()));
        guest = scope.track(QemuGuest.start("qemu", sock, 1, false, QemuGuest.burst(GUEST_FRAMES), scope.logs(), "",
                QemuGuest.hugepages(huge.dir())));

        // Link-up means DRIVER_OK: the memory table is mapped. The burst that follows takes ~2 s.
        guest.awaitLinkUp(back);
        List<String> hugeMaps = ProcessResources.hugePageMappings(back.pid());

        guest.assertBurstPassed(GUEST_FRAMES, "guest with hugetlbfs RAM", back);
        assertFalse(hugeMaps.isEmpty(), backend.name() + " maps no huge-page memory while the guest runs on hugetlbfs:"
                + " the test did not exercise hugetlbfs regions" + back.tail());
    }
}
