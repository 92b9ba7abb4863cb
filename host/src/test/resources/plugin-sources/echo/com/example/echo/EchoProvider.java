package com.example.echo;

import java.util.List;
import com.example.common.SimpleDevice;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.DeviceProvider;
import org.jvhost.spi.OptionSpec;
import org.jvhost.spi.SpiVersion;
import org.jvhost.spi.VhostUserDevice;

public final class EchoProvider implements DeviceProvider {

    @Override public String type() { return "echo"; }
    @Override public String description() { return "test plugin: config space holds the greeting option"; }
    @Override public List<OptionSpec> options() { return List.of(new OptionSpec("greeting", "the config space text", "hello")); }
    @Override public int spiMajorVersion() { return SpiVersion.MAJOR; }
    @Override public VhostUserDevice create(DeviceOptions options, DeviceContext context) {
        return new SimpleDevice(options.get("greeting").orElse(""), 1L << 5, () -> { });
    }
}
