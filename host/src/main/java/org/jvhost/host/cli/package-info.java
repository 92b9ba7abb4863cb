/**
 * The command line and the running device set: {@code jvhost serve} (devices from {@code --device} or a
 * config file, checked and created as a whole before any is served, then kept by a
 * {@link org.jvhost.host.cli.DeviceManager} that applies control requests and reloads), {@code jvhost ctl}
 * (the control socket's client) and {@code jvhost devices} (the device types and their options). Usage
 * errors exit with 2, failures while serving with 1.
 */
package org.jvhost.host.cli;
