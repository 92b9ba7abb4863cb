package org.jvhost.host.it;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.jvhost.engine.server.Host;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.HostService;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.Virtqueue;

/**
 * The back-end request channel with QEMU 7.2 as the front-end: {@code vhost-user-blk-pci} takes the
 * channel (SET_BACKEND_REQ_FD) while it sets the device up, and answers every CONFIG_CHANGE_MSG jvhost
 * sends with NEED_REPLY. QEMU stays paused ({@code -S}): no guest is needed for its half of the protocol
 * (it answers a notice for a device the guest has not started without reading the config space).
 *
 * <p>Why it can fail: jvhost gives the channel up when a reply does not come within 1 s or is not the
 * spec's 20-byte REPLY_ACK, and {@link DeviceContext#notifyConfigChanged()} then returns false; so a
 * notice that still succeeds 1.5 s after the previous one shows QEMU answered that one correctly. The
 * device is in this JVM (a config space and nothing else), so the test needs no blk device.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class BackendChannelIT {
    @RegisterExtension
    final PeerScope scope = new PeerScope();

    /** A virtio-blk device with a config space and no I/O: 60 bytes, capacity 2048 sectors of 512 B. */
    static final class ConfigOnlyBlk implements VhostUserDevice {
        final AtomicInteger configReads = new AtomicInteger();

        @Override public int deviceType() { return 2; }
        @Override public int maxQueues() { return 1; }
        @Override public long features() { return 1L << 6; } // VIRTIO_BLK_F_BLK_SIZE
        @Override public void ackFeatures(long acked) { }
        @Override public int configSize() { return 60; }
        @Override public Set<HostService> hostServices() { return Set.of(HostService.CONFIG_CHANGE_NOTICE); }
        @Override public void startQueue(int queueIndex, Virtqueue queue) { }
        @Override public void handleKick(int queueIndex) { }
        @Override public Virtqueue stopQueue(int queueIndex) { return null; }
        @Override public void reset() { }

        @Override
        public void readConfig(int offset, byte[] dst) {
            ByteBuffer cfg = ByteBuffer.allocate(60).order(ByteOrder.LITTLE_ENDIAN);
            cfg.putLong(0, 2048); // capacity
            cfg.putInt(20, 512); // blk_size
            cfg.get(offset, dst);
            configReads.incrementAndGet();
        }
    }

    @Test
    void qemuAnswersEveryConfigChangeNotice() throws Exception {
        Peers.assumeInstalled(Peers.QEMU, "qemu-system-x86");
        org.junit.jupiter.api.Assumptions.assumeTrue(Backend.selected() instanceof JvhostBackend,
                "jvhost's engine in this JVM is the back-end here; there is no DPDK counterpart to run");
        Path sock = scope.sockets().resolve("blk.sock");
        Host host = scope.track(new Host(1));
        DeviceContext ctx = host.newContext("blk-it");
        ConfigOnlyBlk device = new ConfigOnlyBlk();
        host.addDevice(ctx, device, sock, Host.Mode.LISTEN);
        ProcessUnderTest qemu = scope.track(ProcessUnderTest.start("qemu", List.of(Peers.QEMU,
                "-accel", "tcg", "-m", "64M", "-S",
                "-machine", "q35,memory-backend=mem0",
                "-object", "memory-backend-memfd,id=mem0,size=64M,share=on",
                "-chardev", "socket,id=c1,path=" + sock,
                "-device", "vhost-user-blk-pci,chardev=c1,num-queues=1,vectors=0",
                "-nodefaults", "-display", "none", "-serial", "none"), scope.logs()));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (device.configReads.get() == 0) {
            assertTrue(qemu.isAlive(), "QEMU exited during set-up" + qemu.tail());
            assertTrue(System.nanoTime() < deadline, "QEMU never read the config space" + qemu.tail());
            Thread.sleep(20);
        }
        // SET_BACKEND_REQ_FD comes before GET_CONFIG (vhost_user_backend_init, then the blk realize)
        for (int i = 0; i < 3; i++) {
            assertTrue(ctx.notifyConfigChanged(), "notice " + i + ": the channel is open" + qemu.tail());
            Thread.sleep(1500); // past the reply timeout: an unanswered or garbled reply has closed it now
        }
        assertTrue(ctx.notifyConfigChanged(), "QEMU answered all three notices in time" + qemu.tail());
        assertTrue(qemu.isAlive(), "QEMU still runs" + qemu.tail());
    }
}
