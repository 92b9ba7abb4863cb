/**
 * The command line: {@code jvhost serve} (parse {@code --device} specs, check them against the device
 * types' declared options, create the devices and serve them until SIGTERM/SIGINT) and
 * {@code jvhost devices} (list the device types and their options). Usage errors exit with 2, failures
 * while serving with 1.
 */
package org.jvhost.host.cli;
