package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.jvhost.engine.memory.MemoryBudget;
import org.jvhost.engine.memory.RegionSpec;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.engine.protocol.SingleMemRegionLayout;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 9, finding 4: huge sparse memfds cost a front-end nothing, and ADD_MEM_REG storms of them used
 * to map until the address space ran out (128 TiB), after which every other device's SET_MEM_TABLE
 * failed with ENOMEM. Each connection and all of them together now map at most their limit.
 */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD) // a hung worker must fail, not hang, the test
class MemoryCapsTest {
    private static final long GIB = 1L << 30;
    /** The size of each region of the storm: 256 GiB of sparse memfd. */
    private static final long HUGE = 256 * GIB;

    @TempDir
    Path dir;
    Host host;
    final List<LiveRing> rings = new ArrayList<>();

    @AfterEach
    void stop() throws IOException {
        for (LiveRing r : rings) {
            r.close();
        }
        host.close();
    }

    private LiveRing attacker(String name) throws Exception {
        Path socket = dir.resolve(name + ".sock");
        LiveRing r = new LiveRing(host, name, socket)
                .open(socket, ProtocolFeatures.REPLY_ACK | ProtocolFeatures.CONFIGURE_MEM_SLOTS, true);
        rings.add(r);
        return r;
    }

    /** Sends {@code count} ADD_MEM_REG of fresh {@link #HUGE} sparse memfds; returns how many were accepted. */
    private static int storm(LiveRing r, int count, long gpaBase) throws Exception {
        int accepted = 0;
        for (int i = 0; i < count; i++) {
            int fd = LinuxSys.memfdCreate("storm", LinuxSys.MFD_CLOEXEC | LinuxSys.MFD_ALLOW_SEALING);
            try {
                LinuxSys.truncate(fd, HUGE); // sparse: no page is ever allocated
                long gpa = gpaBase + i * HUGE;
                ScriptedFrontend.Reply reply = r.fe.call(FrontendRequest.ADD_MEM_REG,
                        SingleMemRegionLayout.of(new RegionSpec(gpa, HUGE, gpa, 0)), fd);
                if (reply.u64() == 0) {
                    accepted++;
                }
            } finally {
                LinuxSys.closeQuietly(fd);
            }
        }
        return accepted;
    }

    @Test
    void aStormOfHugeSparseRegionsStopsAtTheConnectionLimitAndOtherDevicesStillGetMemory() throws Exception {
        host = new Host(1); // the default limits
        LiveRing storm = attacker("storm");
        int accepted = storm(storm, 24, 1L << 44);
        assertEquals(MemoryBudget.DEFAULT_CONNECTION_LIMIT / HUGE, accepted,
                "4 TiB of 256 GiB regions are mapped, and no more");
        assertFalse(storm.fe.isClosedByPeer(100), "a refused region is refused with REPLY_ACK, not a hang-up");

        Path socket = dir.resolve("guest.sock");
        LiveRing guest = new LiveRing(host, "guest", socket).connect(socket, true); // SET_MEM_TABLE, ring start
        rings.add(guest);
        guest.kickAndAssertServed(guest.ping());
    }

    @Test
    void allConnectionsTogetherStopAtTheHostLimitAndGetRoomBackWhenOneLeaves() throws Exception {
        host = new Host(1, 50, new MemoryBudget(6L << 40, MemoryBudget.DEFAULT_CONNECTION_LIMIT));
        LiveRing first = attacker("first");
        LiveRing second = attacker("second");
        assertEquals(16, storm(first, 16, 1L << 44), "4 TiB for the first connection");
        assertEquals(8, storm(second, 12, 1L << 44), "the 2 TiB the host limit leaves for the second");
        first.close(); // its regions are unmapped and their bytes returned
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (host.status(first.ctx).connected() && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertEquals(8, storm(second, 12, 1L << 45), "now the second connection maps up to its own limit");
    }

    /**
     * QEMU resends the whole table at every layout change. Mapping it anew before unmapping the old one
     * counted the guest's memory twice, so a guest over half the limit was refused its second table.
     */
    @Test
    void aRepeatedMemTableKeepsItsMappingsSoAGuestOverHalfTheLimitCanResendIt() throws Exception {
        host = new Host(1, 50, new MemoryBudget(MemoryBudget.DEFAULT_HOST_LIMIT, LiveRing.RAM + LiveRing.RAM / 2));
        Path socket = dir.resolve("guest.sock");
        LiveRing guest = new LiveRing(host, "guest", socket).connect(socket, true);
        rings.add(guest);
        guest.kickAndAssertServed(guest.ping());
        guest.fe.setMemTable(); // the same memfd range again: REPLY_ACK 0, not a refusal
        guest.fe.setMemTable();
        guest.kickAndAssertServed(guest.ping());
    }
}
