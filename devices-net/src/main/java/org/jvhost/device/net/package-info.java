/**
 * The {@code net} device: a virtio-net card whose wire is a Linux TAP, for real VM NICs. Frames move
 * between guest buffers and the TAP with readv/writev (no copy in user space), the virtio-net header
 * passing through unchanged so checksum and segmentation offloads work end to end; each queue pair has
 * its own TAP queue (IFF_MULTI_QUEUE) and runs on its own worker, RX driven by the TAP's readiness.
 *
 * <p>Layout, as in a vhost-device crate: {@link org.jvhost.device.net.NetProvider} (options,
 * ServiceLoader entry), {@link org.jvhost.device.net.NetDevice} (the SPI glue),
 * {@code PairDataPath} (the data path of one queue pair, usable without a transport; its RX batches in
 * {@code RxBatch}, its iovecs in {@code IovecArray}), {@code ControlQueue}
 * (the control queue, when the front-end hands it over), {@code Tap} (the
 * wire: {@code LinuxTap}, or a socket pair in tests), {@code IovecRing} (a
 * batch of TAP writes or reads per io_uring_enter, on the jvhost-uring library; one per TAP queue in
 * {@code TapRings}), {@code TunOffloads} (virtio features to TUN_F_*
 * flags) and {@code TapNatives} (every native call). Packaged as a plugin: it depends on the SPI only
 * and bundles JNA and jvhost-uring.
 */
package org.jvhost.device.net;
