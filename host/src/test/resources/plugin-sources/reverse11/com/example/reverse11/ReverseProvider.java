package com.example.reverse11;

import java.util.List;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.DeviceProvider;
import org.jvhost.spi.OptionSpec;
import org.jvhost.spi.SpiVersion;
import org.jvhost.spi.VhostUserDevice;

/**
 * A plugin written against SPI 1.1 and compiled against the 1.1 SPI sources (plugin-sources/spi-1.1,
 * the SPI as of commit b97eac3): a newer host must load it and run it unchanged. The description's
 * version is made of the compile-time constants javac copied in, so it shows which SPI built the jar.
 */
public final class ReverseProvider implements DeviceProvider {

    @Override public String type() { return "reverse11"; }
    @Override public String description() { return "test plugin built against SPI " + SpiVersion.MAJOR + "." + SpiVersion.MINOR; }
    @Override public List<OptionSpec> options() { return List.of(); }
    @Override public int spiMajorVersion() { return SpiVersion.MAJOR; }
    @Override public VhostUserDevice create(DeviceOptions options, DeviceContext context) { return new ReverseDevice(); }
}
