package com.example.missing;

import java.util.List;
import com.example.common.SimpleDevice;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.DeviceProvider;
import org.jvhost.spi.OptionSpec;
import org.jvhost.spi.SpiVersion;
import org.jvhost.spi.VhostUserDevice;

public final class MissingProvider implements DeviceProvider {
    private final Helper helper = new Helper();
    @Override public String type() { return "missing"; }
    @Override public String description() { return "needs a class its jar lacks"; }
    @Override public List<OptionSpec> options() { return List.of(new OptionSpec("greeting", "the config space text", "hello")); }
    @Override public int spiMajorVersion() { return SpiVersion.MAJOR; }
    @Override public VhostUserDevice create(DeviceOptions options, DeviceContext context) {
        return null;
    }
}
