package com.example.crash;

import java.util.List;
import com.example.common.SimpleDevice;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.DeviceProvider;
import org.jvhost.spi.OptionSpec;
import org.jvhost.spi.SpiVersion;
import org.jvhost.spi.VhostUserDevice;

public final class CrashProvider implements DeviceProvider {

    @Override public String type() { return "crash"; }
    @Override public String description() { return "throws from its queue handling"; }
    @Override public List<OptionSpec> options() { return List.of(new OptionSpec("greeting", "the config space text", "hello")); }
    @Override public int spiMajorVersion() { return SpiVersion.MAJOR; }
    @Override public VhostUserDevice create(DeviceOptions options, DeviceContext context) {
        return new SimpleDevice("crash", 0, () -> { throw new IllegalStateException("crash plugin bug: queue handler failed"); });
    }
}
