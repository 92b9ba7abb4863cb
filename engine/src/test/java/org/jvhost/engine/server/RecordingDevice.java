package org.jvhost.engine.server;

import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.Virtqueue;

/** A dummy device that records every host callback as a string ("start 0", "kick 0", "reset"...). */
final class RecordingDevice implements VhostUserDevice {
    final LinkedBlockingQueue<String> events = new LinkedBlockingQueue<>();
    final Virtqueue[] queues;
    volatile boolean throwOnKick;
    /** Serve queues: pop every chain, write "pong" into it and return it to the driver. */
    volatile boolean serve;
    /**
     * With {@link #serve}: take every available chain first and return them all after (up to 16), as a
     * batching device does; and leave notifications off for good (kicks are not wanted).
     */
    volatile boolean batchAndNoKicks;
    /** With {@link #batchAndNoKicks}: how long the batch's used entries wait before their used index is published. */
    volatile long publishDelayMs;
    /** Queues the device calls transmit queues ({@link #isTransmitQueue}), bit n for queue n; none by default. */
    volatile int transmitQueues;
    /** While set, handleKick waits for it (at most 20 s): a device callback that hangs. */
    volatile java.util.concurrent.CountDownLatch holdKick;
    private final org.jvhost.spi.DescriptorChain[] chains;
    private final int configSize;

    RecordingDevice(int maxQueues, int configSize) {
        this.queues = new Virtqueue[maxQueues];
        this.configSize = configSize;
        this.chains = new org.jvhost.spi.DescriptorChain[maxQueues];
    }

    @Override public int deviceType() { return 1; }
    @Override public int maxQueues() { return queues.length; }
    @Override public long features() { return 1L << 5; }
    @Override public void ackFeatures(long acked) { events.add("ack 0x" + Long.toHexString(acked)); }
    /** Whether the device can announce a migrated guest (SEND_RARP); it records "announce MAC". */
    volatile boolean announces;
    @Override public boolean canAnnounce() { return announces; }
    @Override public void announce(byte[] mac) { events.add("announce " + org.jvhost.spi.virtio.VirtioNet.formatMac(mac)); }
    @Override public int configSize() { return configSize; }
    /** The host services the device asks for; none by default. */
    volatile java.util.Set<org.jvhost.spi.HostService> services = java.util.Set.of();
    @Override public java.util.Set<org.jvhost.spi.HostService> hostServices() { return services; }

    @Override
    public void readConfig(int offset, byte[] dst) {
        for (int i = 0; i < dst.length; i++) {
            dst[i] = (byte) (offset + i);
        }
    }

    @Override
    public boolean isTransmitQueue(int queueIndex) {
        return (transmitQueues & (1 << queueIndex)) != 0;
    }

    @Override
    public void startQueue(int queueIndex, Virtqueue queue) {
        queues[queueIndex] = queue;
        chains[queueIndex] = queue.newChain();
        events.add("start " + queueIndex);
    }

    @Override
    public void handleKick(int queueIndex) {
        events.add("kick " + queueIndex);
        java.util.concurrent.CountDownLatch hold = holdKick;
        if (hold != null) {
            try {
                hold.await(20, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (throwOnKick) {
            throw new IllegalStateException("device bug on purpose");
        }
        Virtqueue q = queues[queueIndex];
        if (serve && q != null && batchAndNoKicks) {
            serveBatch(q);
        } else if (serve && q != null) {
            byte[] pong = "pong".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
            do {
                q.disableNotifications();
                while (q.pop(chains[queueIndex])) {
                    q.addUsed(chains[queueIndex], chains[queueIndex].write(0, pong, 0, pong.length));
                }
                q.signalUsed();
            } while (q.enableNotifications());
        }
    }

    private void serveBatch(Virtqueue q) {
        org.jvhost.spi.DescriptorChain[] batch = new org.jvhost.spi.DescriptorChain[16];
        int n = 0;
        q.disableNotifications();
        while (n < batch.length) {
            batch[n] = q.newChain();
            if (!q.pop(batch[n])) {
                break;
            }
            n++;
        }
        for (int i = 0; i < n; i++) {
            q.addUsed(batch[i], 0);
        }
        if (publishDelayMs > 0) {
            try {
                Thread.sleep(publishDelayMs);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        q.signalUsed();
    }

    @Override
    public Virtqueue stopQueue(int queueIndex) {
        events.add("stop " + queueIndex);
        Virtqueue q = queues[queueIndex];
        queues[queueIndex] = null;
        return q;
    }

    @Override
    public Virtqueue pauseQueue(int queueIndex) {
        events.add("pause " + queueIndex);
        Virtqueue q = queues[queueIndex];
        queues[queueIndex] = null;
        return q;
    }

    @Override
    public void reset() {
        events.add("reset");
    }

    /** Whether the device takes part in a hot upgrade: resources (empty) for an early start, and a state. */
    volatile boolean upgradable;

    @Override
    public org.jvhost.spi.DeviceState saveResources() {
        return upgradable ? new org.jvhost.spi.DeviceState("recording", 1, new byte[0]) : null;
    }

    @Override
    public org.jvhost.spi.DeviceState saveState() {
        events.add("save");
        return upgradable ? new org.jvhost.spi.DeviceState("recording", 1, new byte[] {42}) : null;
    }

    @Override
    public void restoreState(org.jvhost.spi.DeviceState state) {
        events.add("restore " + state.data().length);
    }

    @Override
    public void close() {
        events.add("close");
    }

    /** Waits for the next event equal to {@code expected}, skipping others; fails after 5 s. */
    String await(String expected) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        StringBuilder seen = new StringBuilder();
        while (System.nanoTime() < deadline) {
            String e = events.poll(50, TimeUnit.MILLISECONDS);
            if (e == null) {
                continue;
            }
            if (e.equals(expected)) {
                return e;
            }
            seen.append(e).append("; ");
        }
        throw new AssertionError("device never saw '" + expected + "'; saw: " + seen);
    }
}
