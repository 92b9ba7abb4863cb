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

/**
 * Version 2 of the kick-counting plugin: its state v2 adds how many upgrades the count went through; it
 * reads its own v2 and version 1's state (one long), and refuses later versions.
 */
public final class KeeperProvider implements DeviceProvider {
    static final String FORMAT = "com.example.keeper";

    @Override public String type() { return "keeper"; }
    @Override public String description() { return "test plugin v2: counts kicks and upgrades across hot upgrades"; }
    @Override public List<OptionSpec> options() { return List.of(); }
    @Override public int spiMajorVersion() { return SpiVersion.MAJOR; }
    @Override public VhostUserDevice create(DeviceOptions options, DeviceContext context) { return new Keeper(); }

    static final class Keeper implements VhostUserDevice {
        private final AtomicLong kicks = new AtomicLong();
        private long upgrades;
        private long restoredFrom;
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
        @Override public Map<String, Long> counters() {
            return Map.of("kicks", kicks.get(), "plugin_version", 2L, "upgrades", upgrades, "restored_from_version", restoredFrom);
        }
        @Override public DeviceState saveState() {
            return new DeviceState(FORMAT, 2, ByteBuffer.allocate(16).putLong(kicks.get()).putLong(upgrades).array());
        }
        @Override public void restoreState(DeviceState state) {
            if (!FORMAT.equals(state.format()) || state.version() < 1 || state.version() > 2) {
                throw new IllegalArgumentException("keeper v2 reads " + FORMAT + " v1..2, not " + state);
            }
            ByteBuffer b = ByteBuffer.wrap(state.data());
            kicks.set(b.getLong());
            upgrades = (state.version() >= 2 ? b.getLong() : 0) + 1;
            restoredFrom = state.version();
        }
    }
}
