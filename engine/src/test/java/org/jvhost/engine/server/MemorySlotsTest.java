package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.engine.protocol.U64Layout;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * CONFIGURE_MEM_SLOTS: GET_MAX_MEM_SLOTS, ADD_MEM_REG and REM_MEM_REG with a ring running over the
 * added memory, including QEMU's multiqueue pattern of adding the same region once per vhost_dev.
 */
@Timeout(30)
class MemorySlotsTest {
    @TempDir
    Path dir;
    Host host;
    LiveRing ring;
    ScriptedFrontend fe;

    @BeforeEach
    void start() throws Exception {
        host = new Host(1);
        Path socket = dir.resolve("slots.sock");
        ring = new LiveRing(host, "slots", socket)
                .open(socket, ProtocolFeatures.REPLY_ACK | ProtocolFeatures.CONFIGURE_MEM_SLOTS, true);
        fe = ring.fe;
    }

    @AfterEach
    void stop() throws Exception {
        ring.close();
        host.close();
    }

    @Test
    void reportsAtLeast509Slots() throws Exception {
        ScriptedFrontend.Reply r = fe.call(FrontendRequest.GET_MAX_MEM_SLOTS, U64Layout.of(0));
        assertTrue(r.u64() >= 509, "slots: " + r.u64());
    }

    @Test
    void ringRunsOverMemoryAddedWithAddMemReg() throws Exception {
        fe.addMemReg(ring.ram);
        ring.startRing();
        ring.kickAndAssertServed(ring.ping());
    }

    @Test
    void anIdenticalRegionAddedTwiceStaysUntilRemovedTwice() throws Exception {
        // QEMU with queues=2 runs two vhost_devs over one socket, and each adds the guest's RAM
        fe.addMemReg(ring.ram);
        fe.addMemReg(ring.ram);
        ring.startRing();
        ring.kickAndAssertServed(ring.ping());
        fe.remMemReg(ring.ram);
        ring.kickAndAssertServed(ring.ping()); // the other vhost_dev still has it: still mapped, the ring still runs
        fe.remMemReg(ring.ram);
        assertThrows(ScriptedFrontend.RefusedException.class, () -> fe.remMemReg(ring.ram),
                "a third removal finds no region");
    }
}
