/**
 * The contract between the jvhost daemon and a virtio device: what a device author implements
 * ({@link org.jvhost.spi.VhostUserDevice}, {@link org.jvhost.spi.DeviceProvider}) and the
 * virtqueue and guest-memory API the device uses ({@link org.jvhost.spi.Virtqueue},
 * {@link org.jvhost.spi.DescriptorChain}, {@link org.jvhost.spi.GuestMemory}).
 *
 * <p>The SPI speaks in device terms (features, config space, start and stop a queue, reset), never in
 * vhost-user protocol terms; the host owns the protocol. It has no dependencies, so a plugin compiled
 * against it never drags JNA or junixsocket types into its signatures.
 *
 * <h2>Threading</h2>
 * The host serves every queue of every device from a small fixed pool of worker threads. A device maps
 * each queue to a <em>queue group</em> ({@link org.jvhost.spi.VhostUserDevice#queueGroup(int)}); all
 * queue callbacks of one group ({@code startQueue}, {@code handleKick}, {@code stopQueue}, fd watches)
 * run on one worker, one at a time, so a device never needs locks between queues of one group (a
 * virtio-net device puts RX n and TX n into group n). Device-wide calls (features, config, reset) come
 * from the connection's control thread, and only while no queue of the device is running.
 */
package org.jvhost.spi;
