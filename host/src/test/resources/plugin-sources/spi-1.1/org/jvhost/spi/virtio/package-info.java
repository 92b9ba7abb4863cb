/**
 * Constants and layouts from the virtio specification that more than one device type needs (the
 * virtio-net header, feature bits and config space), so device plugins share one definition.
 */
package org.jvhost.spi.virtio;
