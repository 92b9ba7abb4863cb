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
     * The SPI major version the provider was built against; the host refuses a mismatch. Implement it as
     * {@code return SpiVersion.MAJOR;}: javac copies that compile-time constant into the provider's own
     * class file, so the answer is the SPI the plugin was compiled with, not the host's. (It is abstract
     * for that reason: a default body would run from the host's SPI and always match.)
     */
    int spiMajorVersion();
}
