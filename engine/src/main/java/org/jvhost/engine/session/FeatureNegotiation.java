package org.jvhost.engine.session;

import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.ProtocolException;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.VirtioFeatures;

/**
 * The virtio and vhost-user protocol features of one connection: what is offered (GET_FEATURES,
 * GET_PROTOCOL_FEATURES), what the front-end acknowledged, and the checks requests make against them.
 * Control thread only.
 */
final class FeatureNegotiation {
    private final VhostUserDevice device;
    private long acked;
    private long protocol;

    FeatureNegotiation(VhostUserDevice device) {
        this.device = device;
    }

    /**
     * GET_FEATURES: the device's features plus what the transport provides (RING_PACKED unless the device
     * opts out), VHOST_F_LOG_ALL included:
     * the host logs every write into used chains, so no device has to know about migration.
     */
    long offered() {
        return device.features() | VirtioFeatures.HOST_TRANSPORT | VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES
                | DirtyLogging.LOG_ALL | (device.packedRing() ? VirtioFeatures.RING_PACKED : 0);
    }

    /**
     * GET_PROTOCOL_FEATURES: what jvhost implements, CONFIG only for a device with a config space, RARP
     * only for one that can announce the guest (SEND_RARP).
     */
    long offeredProtocol() {
        return ProtocolFeatures.IMPLEMENTED | (device.configSize() > 0 ? ProtocolFeatures.CONFIG : 0)
                | (device.canAnnounce() ? ProtocolFeatures.RARP : 0);
    }

    /** Whether {@code protocolFeature} was negotiated. */
    boolean has(long protocolFeature) {
        return (protocol & protocolFeature) != 0;
    }

    /** Refuses request {@code r} unless {@code protocolFeature} was negotiated. */
    void require(long protocolFeature, FrontendRequest r) throws ProtocolException {
        if (!has(protocolFeature)) {
            throw ProtocolException.failed(r + " needs protocol feature bit "
                    + Long.numberOfTrailingZeros(protocolFeature) + ", which was not negotiated");
        }
    }

    /**
     * SET_FEATURES: checks {@code features} and tells the device. While a ring runs ({@code running}
     * not null) only the features it runs with may be set again, and the device is not told twice;
     * VHOST_F_LOG_ALL alone may change then (a migration starts or ends), and the device never sees it.
     */
    void ack(long features, QueueConfig running) throws ProtocolException {
        long unoffered = features & ~offered();
        if (unoffered != 0) {
            throw ProtocolException.failed(String.format(
                    "SET_FEATURES 0x%x includes bits never offered: 0x%x", features, unoffered));
        }
        if (running != null && ((features ^ acked) & ~DirtyLogging.LOG_ALL) != 0) {
            throw ProtocolException.failed(String.format("SET_FEATURES 0x%x while queue %d runs with 0x%x",
                    features, running.index, acked));
        }
        if (running == null) {
            try {
                device.ackFeatures(features & ~(VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES | DirtyLogging.LOG_ALL));
            } catch (RuntimeException e) {
                throw ProtocolException.failed("SET_FEATURES: the device refused 0x" + Long.toHexString(features), e);
            }
        }
        acked = features;
    }

    /** SET_PROTOCOL_FEATURES. */
    void ackProtocol(long features) throws ProtocolException {
        long unoffered = features & ~offeredProtocol();
        if (unoffered != 0) {
            throw ProtocolException.failed(String.format(
                    "SET_PROTOCOL_FEATURES 0x%x includes bits never offered: 0x%x", features, unoffered));
        }
        protocol = features;
    }

    /**
     * Forgets the virtio features; the protocol features too unless {@code keepProtocol} (see the
     * reset in {@link BackendSession}).
     */
    void reset(boolean keepProtocol) {
        acked = 0;
        if (!keepProtocol) {
            protocol = 0;
        }
    }
}
