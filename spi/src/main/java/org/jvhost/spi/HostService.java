package org.jvhost.spi;

/**
 * Optional services of the host that a device asks for with {@link VhostUserDevice#hostServices()}.
 * The host offers the front-end what each one needs only to devices that ask, so a device that asks
 * for nothing (every plugin built before SPI 1.4) is served exactly as before.
 *
 * @since SPI 1.4
 */
public enum HostService {
    /**
     * The device may tell the driver that its config space changed ({@link DeviceContext#notifyConfigChanged()}),
     * for example a disk that grew. The host asks the front-end for a channel to send such notices on.
     *
     * @since SPI 1.4
     */
    CONFIG_CHANGE_NOTICE,

    /**
     * The host records which requests of each queue the device has taken and not yet returned, in memory
     * the front-end keeps across a restart of the host. After a restart, the requests that were in flight
     * are handed to the device again, in the order the device first took them and before any new one.
     * For devices whose requests may be repeated (a disk's reads and writes), so that a restart of
     * the host neither loses nor drops a request the driver is waiting for. Split rings only: a device
     * that asks is not offered VIRTIO_F_RING_PACKED (whatever {@link VhostUserDevice#packedRing()} says).
     * A device that asks must not {@linkplain Virtqueue#unpop unpop} (the host refuses it on such a queue).
     *
     * @since SPI 1.4
     */
    INFLIGHT_TRACKING
}
