package com.example.errors;

import java.util.List;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.DeviceProvider;
import org.jvhost.spi.OptionSpec;
import org.jvhost.spi.SpiVersion;
import org.jvhost.spi.VhostUserDevice;

/** Lists fine, but create() throws an AssertionError. */
public final class AssertingProvider implements DeviceProvider {
    @Override public String type() { return "asserting"; }
    @Override public String description() { return "create() throws an AssertionError"; }
    @Override public List<OptionSpec> options() { return List.of(); }
    @Override public int spiMajorVersion() { return SpiVersion.MAJOR; }
    @Override public VhostUserDevice create(DeviceOptions options, DeviceContext context) {
        throw new AssertionError("asserting plugin: unreachable state in create");
    }
}
