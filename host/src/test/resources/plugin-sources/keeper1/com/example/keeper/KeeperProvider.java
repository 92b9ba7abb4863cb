package com.example.keeper;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.DeviceProvider;
import org.jvhost.spi.DeviceState;
import org.jvhost.spi.OptionSpec;
import org.jvhost.spi.SpiVersion;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.Virtqueue;

/** Version 1 of a plugin that keeps a count across hot upgrades: kicks seen, saved as state v1 (one long). */
public final class KeeperProvider implements DeviceProvider {
    static final String FORMAT = "com.example.keeper";

    @Override public String type() { return "keeper"; }
    @Override public String description() { return "test plugin v1: counts kicks, keeps the count across a hot upgrade"; }
    @Override public List<OptionSpec> options() { return List.of(); }
    @Override public int spiMajorVersion() { return SpiVersion.MAJOR; }
    @Override public VhostUserDevice create(DeviceOptions options, DeviceContext context) { return new Keeper(); }

    static final class Keeper implements VhostUserDevice {
        private final AtomicLong kicks = new AtomicLong();
        private final Virtqueue[] queues = new Virtqueue[2];

        @Override public int deviceType() { return 1; }
        @Override public int maxQueues() { return 2; }
        @Override public long features() { return 1L << 32; }
        @Override public void ackFeatures(long acked) { }
        @Override public int configSize() { return 0; }
        @Override public void readConfig(int offset, byte[] dst) { }
        @Override public void startQueue(int queueIndex, Virtqueue queue) { queues[queueIndex] = queue; }
        @Override public void handleKick(int queueIndex) { kicks.incrementAndGet(); }
        @Override public Virtqueue stopQueue(int queueIndex) { Virtqueue q = queues[queueIndex]; queues[queueIndex] = null; return q; }
        @Override public void reset() { }
        @Override public Map<String, Long> counters() { return Map.of("kicks", kicks.get(), "plugin_version", 1L); }
        @Override public DeviceState saveState() {
            return new DeviceState(FORMAT, 1, ByteBuffer.allocate(8).putLong(kicks.get()).array());
        }
    }
}
