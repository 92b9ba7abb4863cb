package org.jvhost.testkit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.engine.protocol.U64Layout;
import org.jvhost.engine.server.Host;
import org.jvhost.spi.DeviceContext;
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
    private static final int SIZE = 8;
    private static final long RAM = 1 << 20;

    @TempDir
    Path dir;
    Host host;
    RecordingDevice device;
    ScriptedFrontend fe;
    ScriptedFrontend.GuestRegion ram;
    MockSplitQueue driver;
    int consumed;

    @BeforeEach
    void start() throws Exception {
        host = new Host(1);
        device = new RecordingDevice(2, 0);
        device.serve = true;
        Path socket = dir.resolve("slots.sock");
        DeviceContext ctx = host.newContext("slots");
        host.addDevice(ctx, device, socket, Host.Mode.LISTEN);
        fe = ScriptedFrontend.connect(socket);
        fe.setOwner();
        fe.setFeatures(fe.getFeatures());
        fe.setProtocolFeatures(ProtocolFeatures.REPLY_ACK | ProtocolFeatures.CONFIGURE_MEM_SLOTS);
        ram = fe.addRegion(0, RAM);
        driver = MockSplitQueue.create(FakeGuestMemory.builder().region(0, ram.buffer()).build(), SIZE, 0x1000,
                RAM - 0x1000);
    }

    @AfterEach
    void stop() throws Exception {
        fe.close();
        host.close();
    }

    private void startRing() throws Exception {
        fe.setVringNum(0, SIZE);
        fe.setVringBase(0, 0);
        fe.setVringAddrGpa(0, driver.descGpa(), driver.availGpa(), driver.usedGpa());
        fe.setVringCall(0);
        fe.setVringEnable(0, true);
        fe.setVringKick(0);
        device.await("start 0");
    }

    private void assertRingServes() throws Exception {
        int head = driver.addChain(new byte[][] {"ping".getBytes(StandardCharsets.US_ASCII)}, new int[] {64});
        fe.kick(0);
        assertTrue(fe.waitCall(0, 3000), "the device served the ring");
        MockSplitQueue.UsedElement e = driver.pollUsed();
        assertNotNull(e);
        assertEquals(head, e.id());
        assertArrayEquals("pong".getBytes(StandardCharsets.US_ASCII), driver.writtenBytes(e));
        driver.setUsedEvent(++consumed);
    }

    @Test
    void reportsAtLeast509Slots() throws Exception {
        ScriptedFrontend.Reply r = fe.call(FrontendRequest.GET_MAX_MEM_SLOTS, U64Layout.of(0));
        assertTrue(r.u64() >= 509, "slots: " + r.u64());
    }

    @Test
    void ringRunsOverMemoryAddedWithAddMemReg() throws Exception {
        fe.addMemReg(ram);
        startRing();
        assertRingServes();
    }

    @Test
    void anIdenticalRegionAddedTwiceStaysUntilRemovedTwice() throws Exception {
        // QEMU with queues=2 runs two vhost_devs over one socket, and each adds the guest's RAM
        fe.addMemReg(ram);
        fe.addMemReg(ram);
        startRing();
        assertRingServes();
        fe.remMemReg(ram);
        assertRingServes(); // the other vhost_dev still has it: still mapped, the ring still runs
        fe.remMemReg(ram);
        assertThrows(ScriptedFrontend.RefusedException.class, () -> fe.remMemReg(ram),
                "a third removal finds no region");
    }
}
