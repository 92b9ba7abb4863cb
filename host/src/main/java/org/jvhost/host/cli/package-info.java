/**
 * The command line: {@code jvhost serve} (devices from {@code --device} or a config file, read by
 * {@link org.jvhost.host.config}, then served by the device set in {@link org.jvhost.host.devices}), the
 * control socket's requests ({@link org.jvhost.host.cli.ControlRequests}), {@code jvhost ctl} (the
 * control socket's client), {@code jvhost devices} (the device types and their options), and serve's
 * part in a hot upgrade. Usage errors exit with 2, failures while serving with 1.
 */
package org.jvhost.host.cli;
