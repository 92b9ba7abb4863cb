/**
 * End-to-end tests against real vhost-user front-ends (QEMU with a Linux guest, DPDK testpmd's
 * {@code virtio_user}) and the support they share: bounded process control with captured logs
 * ({@link org.jvhost.host.it.ProcessUnderTest}), the back-end under test behind one interface
 * ({@link org.jvhost.host.it.Backend}: jvhost's loopback device, or DPDK's {@code net_vhost} as the
 * reference), and the peers' command lines ({@link org.jvhost.host.it.Peers}).
 *
 * <p>Run by failsafe ({@code *IT.java}); {@code -Djvhost.it.backend=dpdk|jvhost} picks the back-end.
 */
package org.jvhost.host.it;
