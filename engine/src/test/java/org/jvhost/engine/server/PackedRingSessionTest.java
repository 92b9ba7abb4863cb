package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.HostService;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.spi.Virtqueue;
import org.jvhost.testkit.FakeGuestMemory;
import org.jvhost.testkit.MockPackedQueue;
import org.jvhost.testkit.MockSplitQueue;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Packed rings through a real session (issue 15): which devices are offered VIRTIO_F_RING_PACKED, and
 * a packed ring that wraps, stops with GET_VRING_BASE (both positions and wrap counters), restarts from
 * that base, and goes on in a new host process's place (a reconnect) from the base the front-end kept.
 */
@Timeout(60)
class PackedRingSessionTest {
    private static final int SIZE = 8;
    private static final long RAM = 1 << 20;

    @TempDir
    Path dir;
    Host host = new Host(1);

    @AfterEach
    void close() {
        host.close();
    }

    /** Echoes each chain's readable bytes into its writable part. */
    static final class EchoDevice implements VhostUserDevice {
        private final boolean packed;
        private final Set<HostService> services;
        private Virtqueue queue;

        EchoDevice(boolean packed, Set<HostService> services) {
            this.packed = packed;
            this.services = services;
        }

        @Override public int deviceType() { return 1; }
        @Override public int maxQueues() { return 1; }
        @Override public long features() { return 0; }
        @Override public void ackFeatures(long acked) { }
        @Override public boolean packedRing() { return packed; }
        @Override public Set<HostService> hostServices() { return services; }
        @Override public void startQueue(int queueIndex, Virtqueue q) { queue = q; }
        @Override public Virtqueue stopQueue(int queueIndex) { return queue; }
        @Override public void reset() { }

        @Override
        public void handleKick(int queueIndex) {
            DescriptorChain c = queue.newChain();
            do {
                queue.disableNotifications();
                while (queue.pop(c)) {
                    byte[] in = new byte[c.readableBytes()];
                    c.read(0, in, 0, in.length);
                    queue.addUsed(c, c.write(0, in, 0, in.length));
                }
                queue.signalUsed();
            } while (queue.enableNotifications());
        }
    }

    private Path serve(VhostUserDevice device, String name) throws Exception {
        Path socket = dir.resolve(name + ".sock");
        host.addDevice(host.newContext(name), device, socket, Host.Mode.LISTEN);
        return socket;
    }

    private long offered(VhostUserDevice device, String name) throws Exception {
        try (ScriptedFrontend fe = ScriptedFrontend.connect(serve(device, name))) {
            return fe.getOfferedFeatures();
        }
    }

    @Test
    void packedRingsAreOfferedUnlessTheDeviceOptsOutOrAsksForInflightTracking() throws Exception {
        assertNotEquals(0, offered(new EchoDevice(true, Set.of()), "plain") & VirtioFeatures.RING_PACKED);
        assertEquals(0, offered(new EchoDevice(false, Set.of()), "optout") & VirtioFeatures.RING_PACKED);
        assertEquals(0, offered(new EchoDevice(true, Set.of(HostService.INFLIGHT_TRACKING)), "tracked")
                & VirtioFeatures.RING_PACKED, "inflight tracking is for split rings only");
        try (ScriptedFrontend fe = ScriptedFrontend.connect(dir.resolve("plain.sock"))) {
            assertEquals(0, fe.getFeatures() & VirtioFeatures.RING_PACKED, "the scripted front-end lays out "
                    + "split rings unless a test asks for packed ones");
        }
    }

    private ScriptedFrontend fe;
    private MockPackedQueue driver;
    private int sent;

    private void negotiate() throws Exception {
        fe.setOwner();
        long features = fe.getFeatures();
        assertNotEquals(0, features & VirtioFeatures.RING_PACKED);
        fe.setFeatures(features);
        fe.setProtocolFeatures(ProtocolFeatures.REPLY_ACK);
    }

    private void startRing(int base) throws Exception {
        fe.setVringNum(0, SIZE);
        fe.setVringBase(0, base);
        // packed: desc is the descriptor ring, avail and used the driver and device event areas
        fe.setVringAddrGpa(0, driver.descGpa(), driver.driverGpa(), driver.deviceGpa());
        fe.setVringCall(0);
        fe.setVringEnable(0, true);
        fe.setVringKick(0);
    }

    /** Sends {@code n} buffers one at a time (mixing 1- and 2-descriptor chains) and checks each echo. */
    private void echo(int n) throws Exception {
        for (int i = 0; i < n; i++) {
            String msg = "msg " + sent++;
            int id = sent % 2 == 0
                    ? driver.addChain(new byte[][] {msg.getBytes(StandardCharsets.US_ASCII)}, new int[] {16})
                    : driver.addChain(new byte[][] {msg.substring(0, 2).getBytes(StandardCharsets.US_ASCII),
                            msg.substring(2).getBytes(StandardCharsets.US_ASCII)}, new int[] {16});
            fe.kick(0);
            MockSplitQueue.UsedElement e = null;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(3);
            while ((e = driver.pollUsed()) == null && System.nanoTime() < deadline) {
                fe.waitCall(0, 50);
            }
            assertNotNull(e, msg + " was not returned");
            assertEquals(id, e.id());
            assertEquals(msg, new String(driver.writtenBytes(e), StandardCharsets.US_ASCII));
        }
    }

    @Test
    void aPackedRingWrapsStopsAndResumesFromItsVringBaseAlsoInANewHost() throws Exception {
        Path socket = serve(new EchoDevice(true, Set.of()), "echo");
        fe = ScriptedFrontend.connect(socket).usePackedRings(true);
        negotiate();
        ScriptedFrontend.GuestRegion ram = fe.addRegion(0, RAM);
        driver = MockPackedQueue.create(FakeGuestMemory.builder().region(0, ram.buffer()).build(), SIZE, 0x1000,
                RAM - 0x1000);
        fe.setMemTable();
        startRing(driver.vringBase());
        echo(10); // 5 x 3 + 5 x 2 = 25 ring entries: past the end of the 8-entry ring 3 times

        int base = fe.getVringBase(0);
        assertEquals(driver.vringBase(), base, "GET_VRING_BASE: avail and used positions with their wrap counters");
        assertEquals(1, base & 0xffff, "avail: position 1, wrap counter 0 (flipped 3 times)");
        assertEquals(1, base >>> 16, "used: position 1, wrap counter 0");
        startRing(base);
        echo(5);

        // a new host in its place: the front-end sends the base it got at the last stop (QEMU does so)
        base = fe.getVringBase(0);
        host.close();
        host = new Host(1);
        serve(new EchoDevice(true, Set.of()), "echo");
        fe.reconnect(socket);
        negotiate();
        fe.setMemTable();
        startRing(base);
        echo(11);
        assertEquals(driver.vringBase(), fe.getVringBase(0));
        fe.close();
    }
}
