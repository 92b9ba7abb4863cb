package org.jvhost.engine.session;

import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.ProtocolException;
import org.jvhost.engine.protocol.ProtocolFeatures;
import java.util.Set;
import org.jvhost.spi.HostService;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.VirtioFeatures;

/**
 * The virtio and vhost-user protocol features of one connection: what is offered (GET_FEATURES,
 * GET_PROTOCOL_FEATURES), what the front-end acknowledged, and the checks requests make against them.
 * Control thread only.
 */
final class FeatureNegotiation {
    private final VhostUserDevice device;
    /** What the device asked for ({@link VhostUserDevice#hostServices()}), once per connection. */
    private final Set<HostService> services;
    /** Whether RING_PACKED is offered: the device did not opt out, and asked for no split-only service. */
    private final boolean packed;
    private long acked;
    private long protocol;

    FeatureNegotiation(VhostUserDevice device) {
        this.device = device;
        this.services = servicesOf(device);
        this.packed = !services.contains(HostService.INFLIGHT_TRACKING) && packedOf(device);
    }

    /** The device's {@link VhostUserDevice#packedRing()}; split rings if it fails. */
    private static boolean packedOf(VhostUserDevice device) {
        try {
            return device.packedRing();
        } catch (RuntimeException e) {
            org.slf4j.LoggerFactory.getLogger(FeatureNegotiation.class).error(
                    "the device's packedRing() failed; it is offered split rings only", e);
            return false;
        }
    }

    /** The device's answer; none if it fails (a broken plugin is served as one that asks for nothing). */
    private static Set<HostService> servicesOf(VhostUserDevice device) {
        try {
            return Set.copyOf(device.hostServices());
        } catch (RuntimeException e) {
            org.slf4j.LoggerFactory.getLogger(FeatureNegotiation.class).error(
                    "the device's hostServices() failed; it is offered none of them", e);
            return Set.of();
        }
    }

    /**
     * GET_FEATURES: the device's features plus what the transport provides, VHOST_F_LOG_ALL included:
     * the host logs every write into used chains, so no device has to know about migration. RING_PACKED
     * too, unless the device opts out ({@link VhostUserDevice#packedRing()}) or asked for
     * {@link HostService#INFLIGHT_TRACKING}, which jvhost keeps for split rings only.
     */
    long offered() {
        return device.features() | VirtioFeatures.HOST_TRANSPORT | VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES
                | DirtyLogging.LOG_ALL | (packed ? VirtioFeatures.RING_PACKED : 0);
    }

    /**
     * GET_PROTOCOL_FEATURES: what jvhost implements, CONFIG only for a device with a config space, RARP
     * only for one that can announce the guest (SEND_RARP), BACKEND_REQ and INFLIGHT_SHMFD only for a
     * device that asked for the {@link HostService} they carry.
     */
    long offeredProtocol() {
        return ProtocolFeatures.IMPLEMENTED | (device.configSize() > 0 ? ProtocolFeatures.CONFIG : 0)
                | (device.canAnnounce() ? ProtocolFeatures.RARP : 0)
                | (services.contains(HostService.CONFIG_CHANGE_NOTICE) && device.configSize() > 0
                        ? ProtocolFeatures.BACKEND_REQ : 0)
                | (services.contains(HostService.INFLIGHT_TRACKING) ? ProtocolFeatures.INFLIGHT_SHMFD : 0);
    }

    /** The virtio features acknowledged (SET_FEATURES), 0 before. */
    long acked() {
        return acked;
    }

    /** The protocol features acknowledged (SET_PROTOCOL_FEATURES), 0 before. */
    long protocol() {
        return protocol;
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
