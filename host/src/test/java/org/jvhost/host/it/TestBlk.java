package org.jvhost.host.it;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import org.jvhost.engine.server.Host;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.HostService;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.Virtqueue;

/**
 * The disk {@link InflightBlkIT} serves: a minimal virtio-blk device in test code ({@link RamBlk}) over
 * memory or a file, and a {@link #main} that serves it in a JVM of its own (to be SIGKILLed).
 */
final class TestBlk {
    static final int SECTOR = 512;

    private TestBlk() {
    }

    /** What the devices serve: a disk of some capacity. */
    interface Store {
        long capacity();

        void setCapacity(long bytes);

        void read(long offset, byte[] dst, int len);

        void write(long offset, byte[] src, int len);
    }

    /** The disk both in-process devices serve, as a file would outlive a killed process. */
    static final class Disk implements Store {
        final byte[] bytes = new byte[(int) InflightBlkIT.DISK_BYTES];
        volatile long capacityBytes = InflightBlkIT.START_BYTES;

        @Override public long capacity() { return capacityBytes; }
        @Override public void setCapacity(long bytes) { capacityBytes = bytes; }
        @Override public void read(long offset, byte[] dst, int len) { System.arraycopy(bytes, (int) offset, dst, 0, len); }
        @Override public void write(long offset, byte[] src, int len) { System.arraycopy(src, 0, bytes, (int) offset, len); }
    }

    /** A regular file: positional reads and writes, so what was written survives a SIGKILL (page cache). */
    static final class FileStore implements Store {
        final FileChannel file;
        volatile long capacityBytes;

        FileStore(FileChannel file) throws IOException {
            this.file = file;
            this.capacityBytes = file.size();
        }

        @Override public long capacity() { return capacityBytes; }
        @Override public void setCapacity(long bytes) { capacityBytes = bytes; }

        @Override
        public void read(long offset, byte[] dst, int len) {
            try {
                ByteBuffer b = ByteBuffer.wrap(dst, 0, len);
                while (b.hasRemaining() && file.read(b, offset + b.position()) >= 0) {
                    // a read past the end (a sparse tail) leaves zeros
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        @Override
        public void write(long offset, byte[] src, int len) {
            try {
                ByteBuffer b = ByteBuffer.wrap(src, 0, len);
                while (b.hasRemaining()) {
                    file.write(b, offset + b.position());
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    /**
     * The back-end of {@link InflightBlkIT#killedUnderIoAndRestartedTwentyTimes}, run as its own JVM so it can be
     * SIGKILLed: serves the file {@code args[1]} on socket {@code args[0]} and announces a growth of the
     * file to the guest (the file's size is the disk's capacity).
     */
    public static void main(String[] args) throws Exception {
        FileStore store = new FileStore(FileChannel.open(Path.of(args[1]), StandardOpenOption.READ,
                StandardOpenOption.WRITE));
        Host host = new Host(1);
        DeviceContext ctx = host.newContext("fileblk");
        RamBlk dev = new RamBlk(store, ctx);
        dev.slowReordering = true;
        host.addDevice(ctx, dev, Path.of(args[0]), Host.Mode.LISTEN);
        System.out.println("SERVING");
        long size = store.file.size();
        while (true) {
            Thread.sleep(100);
            long now = store.file.size();
            if (now != size) {
                size = now;
                dev.resize(now);
            }
        }
    }

    /**
     * virtio-blk over {@link Disk}: IN, OUT, FLUSH, GET_ID; one queue; synchronous. With {@link #hold}
     * set, every other request is taken and kept, never completed (a back-end that dies under I/O), while
     * the ones between complete: out of order, as a real disk completes them. (Had it held a run of
     * requests in order, QEMU's own fallback, restarting the ring at its used index, would re-serve
     * exactly those, and the test could not tell a replay from it.)
     */
    static final class RamBlk implements VhostUserDevice {
        private static final int T_IN = 0;
        private static final int T_OUT = 1;
        private static final int T_FLUSH = 4;
        private static final int T_GET_ID = 8;
        final Store disk;
        final DeviceContext context;
        final AtomicInteger held = new AtomicInteger();
        final AtomicInteger served = new AtomicInteger();
        volatile boolean hold;
        /**
         * A slow disk that reorders: take every available request, then serve them last first, 1 ms
         * each, so that many are in flight at any moment and they complete out of order.
         */
        volatile boolean slowReordering;
        private final List<DescriptorChain> keep = new ArrayList<>();
        private Virtqueue queue;
        private int taken;

        RamBlk(Store disk, DeviceContext context) {
            this.disk = disk;
            this.context = context;
        }

        @Override public int deviceType() { return 2; }
        @Override public int maxQueues() { return 1; }
        @Override public long features() { return 1L << 9; } // VIRTIO_BLK_F_FLUSH
        @Override public void ackFeatures(long acked) { }
        @Override public int configSize() { return 60; }
        @Override public Set<HostService> hostServices() {
            return Set.of(HostService.CONFIG_CHANGE_NOTICE, HostService.INFLIGHT_TRACKING);
        }
        @Override public void startQueue(int queueIndex, Virtqueue q) { queue = q; }
        @Override public Virtqueue stopQueue(int queueIndex) { Virtqueue q = queue; queue = null; return q; }
        @Override public void reset() { queue = null; }

        @Override
        public void readConfig(int offset, byte[] dst) {
            ByteBuffer cfg = ByteBuffer.allocate(60).order(ByteOrder.LITTLE_ENDIAN);
            cfg.putLong(0, disk.capacity() / SECTOR);
            cfg.get(offset, dst);
        }

        @Override
        public void resize(long bytes) {
            if (bytes % SECTOR != 0 || bytes > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("not a multiple of 512 below 2 GiB");
            }
            disk.setCapacity(bytes);
            context.notifyConfigChanged();
        }

        @Override
        public void handleKick(int queueIndex) {
            if (slowReordering) {
                serveSlowlyInReverse();
                return;
            }
            DescriptorChain c = queue.newChain();
            do {
                queue.disableNotifications();
                while (queue.pop(c)) {
                    if (hold && taken++ % 2 == 0) {
                        keep.add(c); // taken, never returned: in flight when the host goes
                        held.incrementAndGet();
                        c = queue.newChain();
                        continue;
                    }
                    queue.addUsed(c, serve(c));
                    served.incrementAndGet();
                }
                queue.signalUsed();
            } while (queue.enableNotifications());
        }

        private void serveSlowlyInReverse() {
            do {
                queue.disableNotifications();
                List<DescriptorChain> batch = new ArrayList<>();
                DescriptorChain c = queue.newChain();
                while (queue.pop(c)) {
                    batch.add(c);
                    c = queue.newChain();
                }
                for (int i = batch.size() - 1; i >= 0; i--) {
                    try {
                        Thread.sleep(1);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    queue.addUsed(batch.get(i), serve(batch.get(i)));
                    served.incrementAndGet();
                    if (i % 4 == 0) {
                        queue.signalUsed(); // publish as it goes: a kill may come between two publications
                    }
                }
                queue.signalUsed();
            } while (queue.enableNotifications());
        }

        /** Serves one request; returns the bytes written into the chain (data and the status byte). */
        private int serve(DescriptorChain c) {
            byte[] header = new byte[16];
            c.read(0, header, 0, 16);
            ByteBuffer h = ByteBuffer.wrap(header).order(ByteOrder.LITTLE_ENDIAN);
            int type = h.getInt(0);
            long offset = h.getLong(8) * SECTOR;
            int status = 0;
            int data = 0;
            switch (type) {
                case T_IN:
                    data = c.writableBytes() - 1;
                    if (offset + data > disk.capacity()) {
                        status = 1;
                        data = 0;
                    } else {
                        byte[] in = new byte[data];
                        disk.read(offset, in, data);
                        c.write(0, in, 0, data);
                    }
                    break;
                case T_OUT:
                    int n = c.readableBytes() - 16;
                    if (offset + n > disk.capacity()) {
                        status = 1;
                    } else {
                        byte[] out = new byte[n];
                        c.read(16, out, 0, n);
                        disk.write(offset, out, n);
                    }
                    break;
                case T_FLUSH:
                    break;
                case T_GET_ID:
                    data = Math.min(20, c.writableBytes() - 1);
                    c.write(0, "jvhost-ramblk".getBytes(StandardCharsets.US_ASCII), 0, Math.min(13, data));
                    break;
                default:
                    status = 2; // VIRTIO_BLK_S_UNSUPP
            }
            c.write(c.writableBytes() - 1, new byte[] {(byte) status}, 0, 1);
            return type == T_IN || type == T_GET_ID ? data + 1 : 1;
        }
    }
}
