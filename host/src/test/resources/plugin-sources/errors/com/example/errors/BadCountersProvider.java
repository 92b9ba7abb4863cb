package com.example.errors;

import java.util.List;
import java.util.Map;
import com.example.common.SimpleDevice;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.DeviceProvider;
import org.jvhost.spi.OptionSpec;
import org.jvhost.spi.SpiVersion;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.Virtqueue;

/** A device that works, except that counters() throws an AssertionError. */
public final class BadCountersProvider implements DeviceProvider {
    @Override public String type() { return "bad-counters"; }
    @Override public String description() { return "counters() throws an AssertionError"; }
    @Override public List<OptionSpec> options() { return List.of(); }
    @Override public int spiMajorVersion() { return SpiVersion.MAJOR; }
    @Override public VhostUserDevice create(DeviceOptions options, DeviceContext context) {
        return new BadCounters(new SimpleDevice("bad-counters", 0, () -> { }));
    }

    private static final class BadCounters implements VhostUserDevice {
        private final VhostUserDevice d;
        BadCounters(VhostUserDevice d) { this.d = d; }
        @Override public Map<String, Long> counters() { throw new AssertionError("bad-counters plugin: counters() is broken"); }
        @Override public int deviceType() { return d.deviceType(); }
        @Override public int maxQueues() { return d.maxQueues(); }
        @Override public long features() { return d.features(); }
        @Override public void ackFeatures(long acked) { d.ackFeatures(acked); }
        @Override public int configSize() { return d.configSize(); }
        @Override public void readConfig(int offset, byte[] dst) { d.readConfig(offset, dst); }
        @Override public void startQueue(int queueIndex, Virtqueue queue) { d.startQueue(queueIndex, queue); }
        @Override public void handleKick(int queueIndex) { d.handleKick(queueIndex); }
        @Override public Virtqueue stopQueue(int queueIndex) { return d.stopQueue(queueIndex); }
        @Override public void reset() { d.reset(); }
    }
}
