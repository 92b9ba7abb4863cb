/**
 * The {@code blk} device: virtio-blk (virtio 1.2 section 5.2) over a regular file or a block device.
 * {@link org.jvhost.device.blk.BlkDevice} is the SPI glue (features, config space, queues);
 * {@link org.jvhost.device.blk.BlkRequest} parses one request chain on the worker into what an I/O
 * thread needs; {@link org.jvhost.device.blk.BackingFile} does the I/O, on a bounded pool of the
 * device's own threads, and each request finishes through its {@link org.jvhost.spi.Completion}.
 */
package org.jvhost.device.blk;
