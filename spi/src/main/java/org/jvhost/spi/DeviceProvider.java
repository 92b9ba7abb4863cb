package org.jvhost.spi;

import java.util.List;

/**
 * A device type, found by {@link java.util.ServiceLoader} (list the implementation in
 * {@code META-INF/services/org.jvhost.spi.DeviceProvider}). One provider creates any number of devices:
 * the host calls {@link #create} once per {@code --device} of this type.
 */
public interface DeviceProvider {

    /** The type name users write in {@code --device TYPE:...}: lower case, e.g. {@code loopback}. */
    String type();

    /** One line saying what the device is. */
    String description();

    /**
     * The options the device accepts. The host rejects any other key before calling {@link #create},
     * and fills in defaults for keys the user left out.
     */
    List<OptionSpec> options();

    /**
     * Creates a device from validated options.
     *
     * @throws InvalidOptionException if a value is unacceptable; the message names the key and the value
     */
    VhostUserDevice create(DeviceOptions options, DeviceContext context) throws InvalidOptionException;

    /**
     * The SPI major version the provider was built against; the host refuses a mismatch. Override it as
     * {@code return SpiVersion.MAJOR;}: javac copies that constant into the provider's class file, so it
     * reports the SPI the plugin was compiled with. This default body runs from the host's SPI and so
     * always matches; it only suits providers built together with the host.
     */
    default int spiMajorVersion() {
        return SpiVersion.MAJOR;
    }
}
