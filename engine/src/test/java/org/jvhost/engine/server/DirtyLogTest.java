package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.LogLayout;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.jvhost.testkit.MockSplitQueue;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Dirty-page logging for live migration over a real socket (spec "Migration"): which bits a served
 * chain sets in the shared log, logging turned on and off while the ring runs, GET_VRING_BASE, and
 * every hostile log setup refused without harm to a neighbour device.
 */
@Timeout(30)
class DirtyLogTest {
    /** VHOST_F_LOG_ALL. */
    private static final long LOG_ALL = 1L << 26;
    /** Where the used ring is logged (log_guest_addr): not the used ring's own page, to tell them apart. */
    private static final long LOG_GUEST_ADDRESS = 0x80000;
    /** One bit per 4 KiB page of the ring's 1 MiB of guest memory. */
    private static final long LOG_SIZE = LiveRing.RAM / 4096 / 8;

    @TempDir
    Path dir;
    Host host;
    LiveRing ring;
    Path socket;
    long features;

    @BeforeEach
    void connect() throws Exception {
        host = new Host(2);
        socket = dir.resolve("logged.sock");
        ring = new LiveRing(host, "logged", socket);
        ring.open(socket, ProtocolFeatures.REPLY_ACK | ProtocolFeatures.LOG_SHMFD, true);
        features = ring.fe.getFeatures();
        assertEquals(LOG_ALL, features & LOG_ALL, "VHOST_F_LOG_ALL offered");
        assertEquals(ProtocolFeatures.LOG_SHMFD, ring.fe.getProtocolFeatures() & ProtocolFeatures.LOG_SHMFD);
        ring.fe.setFeatures(features & ~LOG_ALL);
        ring.fe.setMemTable();
    }

    @AfterEach
    void close() throws Exception {
        ring.close();
        host.close();
    }

    /** Starts ring 0 with VHOST_VRING_F_LOG, its used ring logged at {@link #LOG_GUEST_ADDRESS}. */
    private void startLoggedRing() throws Exception {
        MockSplitQueue d = ring.driver;
        ring.fe.setVringNum(0, LiveRing.SIZE);
        ring.fe.setVringBase(0, 0);
        ring.fe.setVringAddrLogged(0, d.descGpa(), d.availGpa(), d.usedGpa(), LOG_GUEST_ADDRESS);
        ring.fe.setVringCall(0);
        ring.fe.setVringEnable(0, true);
        ring.fe.setVringKick(0);
        ring.device.await("start 0");
    }

    /** Pings and returns the pages the answer must dirty: the used ring's at log_guest_addr, the answer's. */
    private Set<Long> pingServed() throws Exception {
        int head = ring.ping();
        ring.kickAndAssertServed(head);
        return Set.of(LOG_GUEST_ADDRESS >>> 12, ring.driver.writableBuffers(head)[0] >>> 12);
    }

    @Test
    void aServedChainSetsExactlyItsPagesAndTheUsedRingsWhileLogAllIsOn() throws Exception {
        try (SharedLog log = new SharedLog("jvhost-test-log", LOG_SIZE, 0, true)) {
            assertEquals(0, ring.fe.setLogBase(log.fd, LOG_SIZE, 0).payload().remaining(), "the spec's empty reply");
            startLoggedRing();
            pingServed();
            assertEquals(Set.of(), log.dirtyPages(), "LOG_ALL off: nothing logged");

            ring.fe.setFeatures(features); // a migration starts while the ring runs
            Set<Long> expected = pingServed();
            assertTrue(expected.size() == 2 && !expected.contains(ring.driver.usedGpa() >>> 12), "a useful test");
            assertEquals(expected, log.dirtyPages());
            log.clear(); // as the front-end does after sending the pages
            Set<Long> again = pingServed();
            assertEquals(again, log.dirtyPages());

            ring.fe.setFeatures(features & ~LOG_ALL); // the migration ends
            log.clear();
            pingServed();
            assertEquals(Set.of(), log.dirtyPages(), "LOG_ALL off again: nothing logged");
            assertEquals(1, log.mappings(), "the back-end let go of the log when LOG_ALL went off");
        }
    }

    @Test
    void aLogAtAnUnalignedOffsetGetsTheSameBits() throws Exception {
        try (SharedLog log = new SharedLog("jvhost-test-log", LOG_SIZE, 3, true)) {
            ring.fe.setFeatures(features);
            ring.fe.setLogBase(log.fd, LOG_SIZE, 3);
            startLoggedRing();
            Set<Long> expected = pingServed();
            assertEquals(expected, log.dirtyPages());
            assertEquals(0, log.bytes.get(0) | log.bytes.get(1) | log.bytes.get(2), "nothing before the offset");
        }
    }

    @Test
    void afterGetVringBaseTheRingWritesNothingMore() throws Exception {
        try (SharedLog log = new SharedLog("jvhost-test-log", LOG_SIZE, 0, true)) {
            ring.fe.setFeatures(features);
            ring.fe.setLogBase(log.fd, LOG_SIZE, 0);
            startLoggedRing();
            Set<Long> expected = pingServed();
            assertEquals(1, ring.fe.getVringBase(0));
            assertEquals(expected, log.dirtyPages(), "the last writes are logged by the time GET_VRING_BASE replies");
            log.clear();
            ring.ping();
            ring.fe.kick(0);
            assertTrue(!ring.fe.waitCall(0, 300), "a stopped ring serves nothing");
            assertNull(ring.driver.pollUsed());
            assertEquals(Set.of(), log.dirtyPages());
        }
    }

    @Test
    void hostileLogSetupsAreRefusedAndTheNeighbourKeepsServing() throws Exception {
        Path other = dir.resolve("neighbour.sock");
        try (LiveRing neighbour = new LiveRing(host, "neighbour", other).connect(other, true);
             SharedLog small = new SharedLog("jvhost-test-small-log", 16, 0, true);
             SharedLog shrinkable = new SharedLog("jvhost-test-shrinkable-log", LOG_SIZE, 0, false);
             SharedLog ok = new SharedLog("jvhost-test-log", LOG_SIZE, 0, true)) {
            ring.fe.setFeatures(features);
            assertRefused(LogLayout.of(LOG_SIZE, 0), small.fd); // a file smaller than announced
            assertRefused(LogLayout.of(LOG_SIZE, Long.MAX_VALUE - 8), ok.fd); // offset + size overflows
            assertRefused(LogLayout.of(LOG_SIZE, -16), ok.fd); // offset + size wraps 2^64
            assertRefused(LogLayout.of(LOG_SIZE, 0)); // no fd
            assertRefused(LogLayout.of(LOG_SIZE / 4, 0), ok.fd); // covers a quarter of guest memory
            assertRefused(LogLayout.of(0, 0), ok.fd); // empty
            assertRefused(LogLayout.of(LOG_SIZE, 0), shrinkable.fd); // could be truncated under the writers
            neighbour.kickAndAssertServed(neighbour.ping());

            // a good log; the front-end cannot truncate it under the writers: it is sealed against shrinking
            assertEquals(0, ring.fe.call(FrontendRequest.SET_LOG_BASE, LogLayout.of(LOG_SIZE, 0), ok.fd)
                    .payload().remaining());
            startLoggedRing();
            assertThrows(NativeException.class, () -> LinuxSys.truncate(ok.fd, 0));
            assertEquals(pingServed(), ok.dirtyPages());

            // the log set twice (QEMU resizes it so): the new one takes every later write, the old one is released
            try (SharedLog second = new SharedLog("jvhost-test-second-log", 2 * LOG_SIZE, 0, true)) {
                ring.fe.setLogBase(second.fd, 2 * LOG_SIZE, 0);
                ok.clear();
                assertEquals(pingServed(), second.dirtyPages());
                assertEquals(Set.of(), ok.dirtyPages());
                assertEquals(1, ok.mappings(), "the back-end unmapped the replaced log");
                ring.close();
                awaitMappings(second, 1);
            }
            neighbour.kickAndAssertServed(neighbour.ping());
        }
    }

    /**
     * The rest of the hostile setups: an fd that is no log file at all (an eventfd), and a bad log sent
     * while a good one is in use, which leaves the good one taking the ring's writes. SET_LOG_FD, which
     * a shared log does not need, is acknowledged. No refused log stays open in the back-end or mapped.
     */
    @Test
    void aWrongLogFdIsRefusedAndABadSecondLogLeavesTheFirstInUse() throws Exception {
        int eventfd = LinuxSys.eventfd(LinuxSys.EFD_CLOEXEC);
        try (SharedLog ok = new SharedLog("jvhost-test-log", LOG_SIZE, 0, true);
             SharedLog small = new SharedLog("jvhost-test-small-log", 16, 0, true)) {
            ring.fe.setFeatures(features);
            assertRefused(LogLayout.of(LOG_SIZE, 0), eventfd);
            assertEquals(0, ring.fe.call(FrontendRequest.SET_LOG_FD, null, eventfd).u64(), "SET_LOG_FD acknowledged");

            ring.fe.setLogBase(ok.fd, LOG_SIZE, 0);
            startLoggedRing();
            assertRefused(LogLayout.of(LOG_SIZE, 0), small.fd);
            assertRefused(LogLayout.of(LOG_SIZE, Long.MAX_VALUE - 8), ok.fd);
            assertEquals(pingServed(), ok.dirtyPages(), "the first log still takes the writes");

            assertEquals(1, small.mappings(), "the refused log is not mapped");
            assertEquals(1, openFdsOf("/memfd:jvhost-test-small-log "), "only the test's own fd of the refused log");
        } finally {
            LinuxSys.closeQuietly(eventfd);
        }
    }

    /** Open fds of this process (host and front-end) whose link names contain {@code what}. */
    private static long openFdsOf(String what) throws IOException {
        try (var fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.map(fd -> {
                try {
                    return Files.readSymbolicLink(fd).toString() + " ";
                } catch (IOException e) {
                    return ""; // closed meanwhile
                }
            }).filter(l -> l.contains(what)).count();
        }
    }

    private void assertRefused(ByteBuffer payload, int... fds) throws IOException {
        ScriptedFrontend.Reply r = ring.fe.call(FrontendRequest.SET_LOG_BASE, payload, fds);
        assertEquals(8, r.payload().remaining(), "a REPLY_ACK, not the empty reply of success");
        assertEquals(1, r.u64(), "refused");
    }

    private static void awaitMappings(SharedLog log, int expected) throws Exception {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (log.mappings() != expected && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertEquals(expected, log.mappings(), "the back-end let go of the log when the front-end left");
    }

    /** The front-end's side of a log: a memfd it maps itself, to read and clear the back-end's bits. */
    static final class SharedLog implements AutoCloseable {
        final int fd;
        final ByteBuffer bytes;
        private final ByteBuffer log;
        private final String name;
        private final long address;
        private final long length;

        SharedLog(String name, long size, long offset, boolean sealable) throws IOException {
            this.name = name;
            this.fd = LinuxSys.memfdCreate(name, LinuxSys.MFD_CLOEXEC | (sealable ? LinuxSys.MFD_ALLOW_SEALING : 0));
            this.length = offset + size;
            LinuxSys.truncate(fd, length);
            this.address = LinuxSys.mmap(length, LinuxSys.PROT_READ | LinuxSys.PROT_WRITE, LinuxSys.MAP_SHARED, fd, 0);
            this.bytes = LinuxSys.buffer(address, length);
            this.log = LinuxSys.buffer(address + offset, size);
        }

        Set<Long> dirtyPages() {
            Set<Long> pages = new TreeSet<>();
            for (int i = 0; i < log.capacity(); i++) {
                for (int bit = 0; bit < 8; bit++) {
                    if ((log.get(i) & (1 << bit)) != 0) {
                        pages.add(8L * i + bit);
                    }
                }
            }
            return pages;
        }

        void clear() {
            for (int i = 0; i < log.capacity(); i++) {
                log.put(i, (byte) 0);
            }
        }

        /** How many mappings of this log the process has (the test's own is one). */
        long mappings() throws IOException {
            try (var lines = Files.lines(Path.of("/proc/self/maps"))) {
                return lines.filter(l -> l.contains("/memfd:" + name + " ")).count();
            }
        }

        @Override
        public void close() throws IOException {
            LinuxSys.munmap(address, length);
            LinuxSys.closeQuietly(fd);
        }
    }
}
