package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.InflightLayout;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.virtq.InflightRing;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.HostService;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.Virtqueue;
import org.jvhost.testkit.FakeGuestMemory;
import org.jvhost.testkit.MockSplitQueue;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Inflight tracking over a real socket (GET_INFLIGHT_FD, SET_INFLIGHT_FD): a host that stops with
 * requests in flight is replaced by a new one; the front-end (as QEMU with reconnect=1) gives it the
 * same region and the ring's used index as base, and the new device gets exactly the requests that were
 * in flight, in the order they were first taken, before any new one, and none that was completed.
 */
@Timeout(60)
class InflightReplayTest {
    private static final int SIZE = 8;
    private static final long RAM = 1 << 20;
    private static final long WANTED = ProtocolFeatures.REPLY_ACK | ProtocolFeatures.INFLIGHT_SHMFD;

    @TempDir
    Path dir;
    Host host = new Host(1);
    final List<Integer> fdsToClose = new ArrayList<>();

    @AfterEach
    void close() {
        host.close();
        fdsToClose.forEach(LinuxSys::closeQuietly);
    }

    /** A disk-like device: requests whose text starts with "done" complete at once, others stay in flight. */
    static final class TrackedDevice implements VhostUserDevice {
        final LinkedBlockingQueue<String> taken = new LinkedBlockingQueue<>();
        final boolean completeAll;
        /** Chains per handleKick call before returning with work left (the host calls back). */
        final int budget;
        Virtqueue queue;

        TrackedDevice(boolean completeAll, int budget) {
            this.completeAll = completeAll;
            this.budget = budget;
        }

        @Override public int deviceType() { return 2; }
        @Override public int maxQueues() { return 1; }
        @Override public long features() { return 0; }
        @Override public void ackFeatures(long acked) { }
        @Override public Set<HostService> hostServices() { return Set.of(HostService.INFLIGHT_TRACKING); }
        @Override public void startQueue(int queueIndex, Virtqueue q) { queue = q; }
        @Override public Virtqueue stopQueue(int queueIndex) { return queue; }
        @Override public void reset() { }

        @Override
        public void handleKick(int queueIndex) {
            int served = 0;
            do {
                queue.disableNotifications();
                DescriptorChain c = queue.newChain(); // one per request: held ones stay valid
                while (queue.pop(c)) {
                    byte[] text = new byte[c.readableBytes()];
                    c.read(0, text, 0, text.length);
                    String s = new String(text, StandardCharsets.US_ASCII);
                    taken.add(s);
                    if (completeAll || s.startsWith("done")) {
                        queue.addUsed(c, 0);
                    }
                    c = queue.newChain();
                    if (++served == budget) {
                        queue.signalUsed();
                        return;
                    }
                }
                queue.signalUsed();
            } while (queue.enableNotifications());
        }

        String next() throws InterruptedException {
            return taken.poll(5, TimeUnit.SECONDS);
        }
    }

    private ScriptedFrontend fe;
    private ScriptedFrontend.GuestRegion ram;
    private MockSplitQueue driver;

    private Path serve(TrackedDevice device) throws Exception {
        Path socket = dir.resolve("blk.sock");
        host.addDevice(host.newContext("blk"), device, socket, Host.Mode.LISTEN);
        return socket;
    }

    private void negotiate() throws Exception {
        fe.setOwner();
        fe.setFeatures(fe.getFeatures());
        assertEquals(ProtocolFeatures.INFLIGHT_SHMFD, fe.getProtocolFeatures() & ProtocolFeatures.INFLIGHT_SHMFD);
        fe.setProtocolFeatures(WANTED);
    }

    /** GET_INFLIGHT_FD for one queue of {@link #SIZE}; returns the memfd. */
    private int getInflight() throws Exception {
        int[] fd = new int[1];
        ScriptedFrontend.Reply r = fe.callForFd(FrontendRequest.GET_INFLIGHT_FD, InflightLayout.of(0, 0, 1, SIZE), fd);
        assertTrue(fd[0] >= 0, "the reply carries the region's memfd");
        fdsToClose.add(fd[0]);
        assertEquals(InflightRing.regionSize(SIZE), InflightLayout.mmapSize(r.payload()));
        assertEquals(0, InflightLayout.mmapOffset(r.payload()));
        assertEquals(InflightRing.regionSize(SIZE), LinuxSys.fileSize(fd[0]));
        return fd[0];
    }

    private long setInflight(int fd, long size) throws Exception {
        return fe.call(FrontendRequest.SET_INFLIGHT_FD, InflightLayout.of(size, 0, 1, SIZE), fd).u64();
    }

    private void startRing(int base) throws Exception {
        fe.setVringNum(0, SIZE);
        fe.setVringBase(0, base);
        fe.setVringAddrGpa(0, driver.descGpa(), driver.availGpa(), driver.usedGpa());
        fe.setVringCall(0);
        fe.setVringEnable(0, true);
        fe.setVringKick(0);
    }

    private int request(String text) {
        return driver.addChain(new byte[][] {text.getBytes(StandardCharsets.US_ASCII)}, new int[] {16});
    }

    @Test
    void aRestartedHostReplaysWhatWasInFlightFirstAndNothingElse() throws Exception {
        TrackedDevice first = new TrackedDevice(false, 64);
        Path socket = serve(first);
        fe = ScriptedFrontend.connect(socket);
        negotiate();
        int inflightFd = getInflight();
        assertEquals(0, setInflight(inflightFd, InflightRing.regionSize(SIZE)));
        ram = fe.addRegion(0, RAM);
        driver = MockSplitQueue.create(FakeGuestMemory.builder().region(0, ram.buffer()).build(), SIZE, 0x1000,
                RAM - 0x1000);
        fe.setMemTable();
        startRing(0);
        for (String s : new String[] {"write A", "done B", "write C", "done D"}) {
            request(s);
        }
        fe.kick(0);
        for (String s : new String[] {"write A", "done B", "write C", "done D"}) {
            assertEquals(s, first.next());
        }
        assertTrue(fe.waitCall(0, 3000));
        assertEquals(2, driver.usedIdx(), "B and D completed, A and C in flight");

        // the host goes away without a GET_VRING_BASE (as a killed jvhost); a new one takes the socket
        host.close();
        host = new Host(1);
        TrackedDevice second = new TrackedDevice(true, 1); // one chain per call: the replay must go on without kicks
        serve(second);
        fe.reconnect(socket);
        negotiate();
        assertEquals(0, setInflight(inflightFd, InflightRing.regionSize(SIZE)), "QEMU re-sends the region it kept");
        fe.setMemTable();
        startRing(driver.usedIdx()); // QEMU's base after a lost back-end: the used index
        assertEquals("write A", second.next(), "replayed first, in the order first taken");
        assertEquals("write C", second.next());
        request("write E");
        fe.kick(0);
        assertEquals("write E", second.next(), "new requests after the replayed ones");
        assertNull(second.taken.poll(300, TimeUnit.MILLISECONDS), "B and D, completed before, are not repeated");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(3);
        while (driver.usedIdx() != 5 && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertEquals(5, driver.usedIdx(), "every request completed exactly once");
        fe.close();
    }

    @Test
    void aDeviceThatDoesNotAskIsNotOfferedInflightTracking() throws Exception {
        RecordingDevice plain = new RecordingDevice(1, 0);
        Path socket = dir.resolve("plain.sock");
        host.addDevice(host.newContext("plain"), plain, socket, Host.Mode.LISTEN);
        try (ScriptedFrontend f = ScriptedFrontend.connect(socket)) {
            f.setOwner();
            assertEquals(0, f.getProtocolFeatures() & ProtocolFeatures.INFLIGHT_SHMFD);
            f.setProtocolFeatures(ProtocolFeatures.REPLY_ACK);
            assertEquals(8, f.call(FrontendRequest.GET_INFLIGHT_FD, InflightLayout.of(0, 0, 1, SIZE)).payload()
                    .remaining(), "refused with a REPLY_ACK failure");
        }
    }

    @Test
    void badRegionsAreRefusedWithTheirReason() throws Exception {
        serve(new TrackedDevice(false, 64));
        fe = ScriptedFrontend.connect(dir.resolve("blk.sock"));
        negotiate();
        int good = getInflight();
        assertEquals(1, setInflight(good, 64), "mmap_size that does not fit the queues");
        assertEquals(1, fe.call(FrontendRequest.SET_INFLIGHT_FD,
                InflightLayout.of(InflightRing.regionSize(SIZE), 0, 1, SIZE)).u64(), "no fd");
        int[] bad = {-1, -1};
        // a memfd that cannot be sealed against shrinking could be truncated under us (SIGBUS)
        bad[0] = LinuxSys.memfdCreate("unsealable", LinuxSys.MFD_CLOEXEC);
        fdsToClose.add(bad[0]);
        LinuxSys.truncate(bad[0], InflightRing.regionSize(SIZE));
        assertEquals(1, setInflight(bad[0], InflightRing.regionSize(SIZE)));
        // a file shorter than the region
        bad[1] = LinuxSys.memfdCreate("short", LinuxSys.MFD_CLOEXEC | LinuxSys.MFD_ALLOW_SEALING);
        fdsToClose.add(bad[1]);
        LinuxSys.truncate(bad[1], 64);
        assertEquals(1, setInflight(bad[1], InflightRing.regionSize(SIZE)));
        ScriptedFrontend.Reply twoQueues = fe.call(FrontendRequest.GET_INFLIGHT_FD, InflightLayout.of(0, 0, 2, SIZE));
        assertEquals(8, twoQueues.payload().remaining(), "2 queues on a 1-queue device: a REPLY_ACK failure");
        assertEquals(1, twoQueues.u64());
        assertEquals(0, setInflight(good, InflightRing.regionSize(SIZE)), "the good one still maps");
        assertNotNull(fe.getFeatures());
        fe.close();
    }
}
