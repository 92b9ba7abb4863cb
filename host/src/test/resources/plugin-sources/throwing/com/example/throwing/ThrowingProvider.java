package com.example.throwing;

import java.util.List;
import com.example.common.SimpleDevice;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.DeviceProvider;
import org.jvhost.spi.OptionSpec;
import org.jvhost.spi.SpiVersion;
import org.jvhost.spi.VhostUserDevice;

public final class ThrowingProvider implements DeviceProvider {
    public ThrowingProvider() { throw new IllegalStateException("licence file /etc/throwing.lic is missing"); }
    @Override public String type() { return "throwing"; }
    @Override public String description() { return "never constructed"; }
    @Override public List<OptionSpec> options() { return List.of(new OptionSpec("greeting", "the config space text", "hello")); }
    @Override public int spiMajorVersion() { return SpiVersion.MAJOR; }
    @Override public VhostUserDevice create(DeviceOptions options, DeviceContext context) {
        return null;
    }
}
