package com.example.common;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.Virtqueue;

/** A test plugin's device: a fixed config space, one queue pair, and a hook run on each kick. */
public final class SimpleDevice implements VhostUserDevice {
    private final byte[] config;
    private final long features;
    private final Runnable onKick;
    private final Virtqueue[] queues = new Virtqueue[2];

    public SimpleDevice(String config, long features, Runnable onKick) {
        this.config = Arrays.copyOf(config.getBytes(StandardCharsets.US_ASCII), 16);
        this.features = features;
        this.onKick = onKick;
    }

    @Override public int deviceType() { return 1; }
    @Override public int maxQueues() { return 2; }
    @Override public long features() { return features; }
    @Override public void ackFeatures(long acked) { }
    @Override public int configSize() { return config.length; }
    @Override public void readConfig(int offset, byte[] dst) { System.arraycopy(config, offset, dst, 0, dst.length); }
    @Override public void startQueue(int queueIndex, Virtqueue queue) { queues[queueIndex] = queue; }
    @Override public void handleKick(int queueIndex) { onKick.run(); }
    @Override public Virtqueue stopQueue(int queueIndex) { Virtqueue q = queues[queueIndex]; queues[queueIndex] = null; return q; }
    @Override public void reset() { Arrays.fill(queues, null); }
}
