/**
 * The configuration model: what an operator declared, before anything is created. {@link
 * org.jvhost.host.config.ConfigFile} reads {@code serve --config FILE} (its devices and its {@code [host]}
 * settings), {@link org.jvhost.host.config.DeviceSpec} is one {@code --device} argument, {@link
 * org.jvhost.host.config.DeviceEntry} one declared device with where it was declared, {@link
 * org.jvhost.host.config.InstrumentOptions} the host's instrument keys that every device type accepts,
 * and {@link org.jvhost.host.config.ConfigException} a configuration refused as a whole with every
 * problem named. Nothing here starts a device or opens a socket.
 */
package org.jvhost.host.config;
