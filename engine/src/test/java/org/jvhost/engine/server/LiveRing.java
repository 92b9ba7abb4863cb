package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.spi.DeviceContext;
import org.jvhost.testkit.FakeGuestMemory;
import org.jvhost.testkit.MockSplitQueue;
import org.jvhost.testkit.ScriptedFrontend;

/**
 * A device served by a {@link Host} with a well-behaved front-end driving one ring over memfd memory:
 * {@link #ping()} publishes a request, {@link #assertServed(int)} checks the device's "pong".
 */
final class LiveRing implements AutoCloseable {
    static final int SIZE = 8;
    static final long RAM = 1 << 20;

    final RecordingDevice device = new RecordingDevice(2, 0);
    final DeviceContext ctx;
    ScriptedFrontend fe;
    ScriptedFrontend.GuestRegion ram;
    MockSplitQueue driver;
    private int consumed;

    /** Adds a serving device named {@code name} to {@code host}, listening on {@code socket}. */
    LiveRing(Host host, String name, Path socket) throws IOException {
        device.serve = true;
        ctx = host.newContext(name);
        host.addDevice(ctx, device, socket, Host.Mode.LISTEN);
    }

    /** Connects, negotiates, shares memory with SET_MEM_TABLE and starts ring 0. */
    LiveRing connect(Path socket, boolean sealable) throws Exception {
        open(socket, ProtocolFeatures.REPLY_ACK, sealable);
        fe.setMemTable();
        startRing();
        return this;
    }

    /**
     * Connects and negotiates {@code protocolFeatures}, and lays out the guest RAM and ring 0's driver side,
     * without sharing the memory yet (the caller does, e.g. with ADD_MEM_REG) or starting the ring.
     */
    LiveRing open(Path socket, long protocolFeatures, boolean sealable) throws Exception {
        consumed = 0;
        fe = ScriptedFrontend.connect(socket);
        fe.setOwner();
        fe.setFeatures(fe.getFeatures());
        fe.setProtocolFeatures(protocolFeatures);
        ram = fe.addRegion(0, RAM, sealable);
        driver = MockSplitQueue.create(FakeGuestMemory.builder().region(0, ram.buffer()).build(), SIZE, 0x1000,
                RAM - 0x1000);
        return this;
    }

    /** Configures, enables and kicks ring 0 (its start), and waits for the device to get it. */
    void startRing() throws Exception {
        fe.setVringNum(0, SIZE);
        fe.setVringBase(0, 0);
        fe.setVringAddrGpa(0, driver.descGpa(), driver.availGpa(), driver.usedGpa());
        fe.setVringCall(0);
        fe.setVringEnable(0, true);
        fe.setVringKick(0);
        device.await("start 0");
    }

    /** Publishes a "ping" chain with room for the answer; returns its head. */
    int ping() {
        return driver.addChain(new byte[][] {"ping".getBytes(StandardCharsets.US_ASCII)}, new int[] {64});
    }

    /** Kicks and checks that the chain at {@code head} comes back answered. */
    void kickAndAssertServed(int head) throws Exception {
        fe.kick(0);
        assertServed(head);
    }

    void assertServed(int head) throws Exception {
        assertTrue(fe.waitCall(0, 3000), "the device served the ring");
        MockSplitQueue.UsedElement e = driver.pollUsed();
        assertNotNull(e);
        assertEquals(head, e.id());
        assertArrayEquals("pong".getBytes(StandardCharsets.US_ASCII), driver.writtenBytes(e));
        driver.setUsedEvent(++consumed);
    }

    @Override
    public void close() throws IOException {
        if (fe != null) {
            fe.close();
            fe = null;
        }
    }
}
