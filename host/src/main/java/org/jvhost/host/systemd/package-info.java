/**
 * Running under systemd: the service manager's notification protocol (READY, RELOADING, STOPPING),
 * spoken over junixsocket's AF_UNIX datagrams, without libsystemd.
 */
package org.jvhost.host.systemd;
