package org.jvhost.device.loopback;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.engine.server.Host;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.virtio.VirtioNet;
import org.jvhost.testkit.FakeGuestMemory;
import org.jvhost.testkit.MockSplitQueue;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The loopback device served by a {@link Host} over a real socket, with its queue pair disabled by the
 * front-end (as QEMU does to the pairs beyond those the guest uses). vhost-user "Ring states": a
 * disabled network ring supplies no RX packets, and what is transmitted on it is processed and
 * discarded, not kept and reflected once the pair is enabled again.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class LoopbackDisabledPairTest {
    private static final byte[] MAC = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    private static final byte[] PEER = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
    private static final long RAM = 4 << 20;
    private static final long AREA = 1 << 20;
    private static final int SIZE = 16;
    private static final int RX = 0;
    private static final int TX = 1;

    @TempDir
    Path dir;
    private Host host;
    private DeviceContext ctx;
    private LoopbackDevice device;
    private ScriptedFrontend fe;
    private final MockSplitQueue[] drivers = new MockSplitQueue[2];

    @BeforeEach
    void connect() throws Exception {
        host = new Host(2);
        Path socket = dir.resolve("lo.sock");
        ctx = host.newContext("loopback@" + socket);
        device = new LoopbackDevice("loopback@" + socket, new LoopbackConfig(MAC, 1, true));
        host.addDevice(ctx, device, socket, Host.Mode.LISTEN);
        fe = ScriptedFrontend.connect(socket);
        fe.setOwner();
        fe.setFeatures(fe.getFeatures());
        fe.setProtocolFeatures(ProtocolFeatures.REPLY_ACK);
        ScriptedFrontend.GuestRegion ram = fe.addRegion(0, RAM);
        fe.setMemTable();
        FakeGuestMemory view = FakeGuestMemory.builder().region(0, ram.buffer()).build();
        for (int q : new int[] {RX, TX}) {
            drivers[q] = MockSplitQueue.create(view, SIZE, 0x1000 + q * AREA, AREA - 0x1000);
            fe.setVringNum(q, SIZE);
            fe.setVringBase(q, 0);
            fe.setVringAddrGpa(q, drivers[q].descGpa(), drivers[q].availGpa(), drivers[q].usedGpa());
            fe.setVringCall(q);
            fe.setVringEnable(q, true);
            fe.setVringKick(q);
        }
    }

    @AfterEach
    void close() throws Exception {
        fe.close();
        host.close();
    }

    @Test
    void framesSentWhileThePairIsDisabledAreConsumedAndNeverReflectedAfterReEnable() throws Exception {
        for (int i = 0; i < 4; i++) {
            postRxBuffer();
        }
        transmit(frame(60, 'A'));
        assertArrayEquals(reflected(frame(60, 'A')), awaitReceived(1), "the pair works before it is disabled");

        setPairEnabled(false);
        transmit(frame(60, 'B'));
        transmit(frame(60, 'C'));
        awaitUsedIdx(TX, 3);
        assertEquals(0, drivers[TX].usedElement(1).len());
        assertEquals(0, drivers[TX].usedElement(2).len());
        postRxBuffer();
        assertFalse(fe.waitCall(RX, 200), "a disabled RX ring was signalled");
        assertEquals(1, drivers[RX].usedIdx(), "a disabled RX ring got a frame");
        assertEquals(1L, device.counters().get("tx_frames"), "frames sent while disabled reached the device");

        setPairEnabled(true);
        transmit(frame(60, 'D'));
        // the RX ring's next frame is D: B and C were not kept to be reflected now
        assertArrayEquals(reflected(frame(60, 'D')), awaitReceived(2));
        awaitUsedIdx(TX, 4);
        assertFalse(fe.waitCall(RX, 200), "more frames came back than were sent while enabled");
        assertEquals(2, drivers[RX].usedIdx());
        assertEquals(2L, device.counters().get("tx_frames"));
        assertEquals(2L, device.counters().get("rx_frames"));
    }

    private void setPairEnabled(boolean on) throws Exception {
        fe.setVringEnable(RX, on); // with REPLY_ACK, acknowledged once the ring's worker has acted on it
        fe.setVringEnable(TX, on);
    }

    private void postRxBuffer() throws Exception {
        drivers[RX].addChain(new byte[0][], new int[] {2048});
        fe.kick(RX);
    }

    private void transmit(byte[] frame) throws Exception {
        drivers[TX].addChain(new byte[][] {new byte[VirtioNet.HDR_LEN], frame}, new int[0]);
        fe.kick(TX);
    }

    /**
     * Waits until the RX used ring holds {@code count} entries and the driver is signalled, re-arms the
     * signal for the next entry (used_event, as a Linux driver does), and returns the last frame.
     */
    private byte[] awaitReceived(int count) throws Exception {
        awaitUsedIdx(RX, count);
        assertTrue(fe.waitCall(RX, 3000), "RX signalled");
        drivers[RX].setUsedEvent(count);
        MockSplitQueue.UsedElement e = drivers[RX].usedElement(count - 1);
        byte[] written = drivers[RX].writtenBytes(e.id(), e.len());
        return Arrays.copyOfRange(written, VirtioNet.HDR_LEN, written.length);
    }

    private void awaitUsedIdx(int q, int count) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (drivers[q].usedIdx() < count && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertEquals(count, drivers[q].usedIdx(), "queue " + q + " used index");
    }

    /** dst, src, EtherType 0x88b5 (local experimental), then {@code fill}. */
    private static byte[] frame(int length, char fill) {
        byte[] f = new byte[length];
        Arrays.fill(f, (byte) fill);
        System.arraycopy(MAC, 0, f, 0, 6);
        System.arraycopy(PEER, 0, f, 6, 6);
        f[12] = (byte) 0x88;
        f[13] = (byte) 0xb5;
        return f;
    }

    private static byte[] reflected(byte[] frame) {
        byte[] r = frame.clone();
        System.arraycopy(frame, 6, r, 0, 6);
        System.arraycopy(frame, 0, r, 6, 6);
        return r;
    }
}
