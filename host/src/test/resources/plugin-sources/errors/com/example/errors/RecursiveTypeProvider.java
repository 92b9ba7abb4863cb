package com.example.errors;

import java.util.List;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.DeviceProvider;
import org.jvhost.spi.OptionSpec;
import org.jvhost.spi.SpiVersion;
import org.jvhost.spi.VhostUserDevice;

/** type() recurses without end: a StackOverflowError while the host loads its device types. */
public final class RecursiveTypeProvider implements DeviceProvider {
    @Override public String type() { return "r" + type(); }
    @Override public String description() { return "never listed"; }
    @Override public List<OptionSpec> options() { return List.of(); }
    @Override public int spiMajorVersion() { return SpiVersion.MAJOR; }
    @Override public VhostUserDevice create(DeviceOptions options, DeviceContext context) { return null; }
}
