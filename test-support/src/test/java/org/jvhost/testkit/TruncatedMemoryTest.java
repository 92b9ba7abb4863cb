package org.jvhost.testkit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.engine.server.Host;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.jvhost.spi.DeviceContext;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A front-end that shrinks guest memory under a running ring (java-stack §7: DPDK's back-end dies with
 * SIGBUS on this). Sealable memfds are sealed, so the shrink is refused; an unsealable one shrinks, the
 * device's next access faults, and that device alone fails while the host and other devices go on.
 */
@Timeout(60)
class TruncatedMemoryTest {
    private static final int SIZE = 8;
    private static final long RAM = 1 << 20;

    @TempDir
    Path dir;
    Host host;
    final Guest victim = new Guest();
    final Guest bystander = new Guest();

    /** One device with its front-end and driver-side ring. */
    final class Guest {
        RecordingDevice device;
        DeviceContext ctx;
        ScriptedFrontend fe;
        ScriptedFrontend.GuestRegion ram;
        MockSplitQueue driver;
        int consumed;

        void start(String name, boolean sealable) throws Exception {
            device = new RecordingDevice(2, 0);
            device.serve = true;
            Path socket = dir.resolve(name + ".sock");
            ctx = host.newContext(name);
            host.addDevice(ctx, device, socket, Host.Mode.LISTEN);
            fe = ScriptedFrontend.connect(socket);
            fe.setOwner();
            fe.setFeatures(fe.getFeatures());
            fe.setProtocolFeatures(ProtocolFeatures.REPLY_ACK);
            ram = fe.addRegion(0, RAM, sealable);
            fe.setMemTable();
            driver = MockSplitQueue.create(FakeGuestMemory.builder().region(0, ram.buffer()).build(), SIZE, 0x1000,
                    RAM - 0x1000);
            fe.setVringNum(0, SIZE);
            fe.setVringBase(0, 0);
            fe.setVringAddrGpa(0, driver.descGpa(), driver.availGpa(), driver.usedGpa());
            fe.setVringCall(0);
            fe.setVringEnable(0, true);
            fe.setVringKick(0);
            device.await("start 0");
        }

        int ping() {
            return driver.addChain(new byte[][] {"ping".getBytes(StandardCharsets.US_ASCII)}, new int[] {64});
        }

        void assertServed(int head) throws Exception {
            assertTrue(fe.waitCall(0, 3000), "the device served the ring");
            MockSplitQueue.UsedElement e = driver.pollUsed();
            assertNotNull(e);
            assertEquals(head, e.id());
            assertArrayEquals("pong".getBytes(StandardCharsets.US_ASCII), driver.writtenBytes(e));
            driver.setUsedEvent(++consumed);
        }
    }

    @BeforeEach
    void start() {
        host = new Host(1);
    }

    @AfterEach
    void stop() throws Exception {
        for (Guest g : new Guest[] {victim, bystander}) {
            if (g.fe != null) {
                g.fe.close();
            }
        }
        host.close();
    }

    @Test
    void aSealableMemfdCannotBeShrunkOnceMapped() throws Exception {
        victim.start("sealed", true);
        NativeException e = assertThrows(NativeException.class, () -> LinuxSys.truncate(victim.ram.memfd(), 0));
        assertEquals(NativeException.EPERM, e.errno(), "F_SEAL_SHRINK refuses the shrink");
        int head = victim.ping();
        victim.fe.kick(0);
        victim.assertServed(head);
    }

    @Test
    void shrunkGuestMemoryFailsThatDeviceAloneAndTheHostGoesOn() throws Exception {
        victim.start("victim", false);
        bystander.start("bystander", true);
        int head = victim.ping();
        victim.fe.kick(0);
        victim.assertServed(head);

        victim.ping(); // published while the memory is still there
        LinuxSys.truncate(victim.ram.memfd(), 0); // the front-end pulls the memory from under the ring
        victim.fe.kick(0); // the worker's next read of the ring faults (SIGBUS -> InternalError)
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!host.status(victim.ctx).failed() && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertTrue(host.status(victim.ctx).failed(), "the faulting device is marked failed");

        for (int i = 0; i < 3; i++) { // the same worker thread keeps serving the other device
            int h = bystander.ping();
            bystander.fe.kick(0);
            bystander.assertServed(h);
        }
        assertTrue(!host.status(bystander.ctx).failed());
    }
}
