/**
 * Finding device types: {@link org.jvhost.host.plugin.DeviceTypes} wraps {@link java.util.ServiceLoader}
 * over {@link org.jvhost.spi.DeviceProvider}, refusing providers built for another SPI major version,
 * refusing type names two providers claim, and reporting a provider that fails to load without losing
 * the others.
 */
package org.jvhost.host.plugin;
