/**
 * The {@code loopback} device: a virtio-net card whose wire is a mirror. Every frame the driver sends on
 * TX queue {@code 2n+1} comes back on RX queue {@code 2n} with source and destination MAC swapped, so a
 * guest or a DPDK {@code virtio_user} port can exercise a complete vhost-user data path without root,
 * TAP devices or a second peer.
 *
 * <p>Layout, as in a vhost-device crate: {@link org.jvhost.device.loopback.LoopbackProvider} (options,
 * ServiceLoader entry), {@link org.jvhost.device.loopback.LoopbackDevice} (the SPI glue: features,
 * config space, queue hand-over, the processing loop) and
 * {@link org.jvhost.device.loopback.FrameReflector} (the data path: one TX chain into RX chains,
 * usable without any transport).
 */
package org.jvhost.device.loopback;
