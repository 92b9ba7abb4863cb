package org.jvhost.engine.session;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.jvhost.engine.memory.MappedRegion;
import org.jvhost.engine.memory.RegionSpec;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.MemoryTableLayout;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.engine.protocol.SingleMemRegionLayout;
import org.jvhost.engine.protocol.U64Layout;
import org.jvhost.engine.protocol.VringAddrLayout;
import org.jvhost.engine.protocol.VringStateLayout;
import org.jvhost.spi.VirtioFeatures;

/**
 * A paused connection's state, written as the vhost-user requests that would set it up again: a hot
 * upgrade sends these to the new process, whose session replays them before it reads the socket. The
 * format is therefore the spec's own, and the new process checks each request as it checks a
 * front-end's. In this order:
 *
 * <ol>
 * <li>SET_PROTOCOL_FEATURES and SET_FEATURES, as acknowledged;</li>
 * <li>the guest memory: one ADD_MEM_REG per region (and per duplicate add) if CONFIGURE_MEM_SLOTS was
 *     negotiated, else one SET_MEM_TABLE (at most 8 regions then), with the region fds;</li>
 * <li>per ring: SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE (where the paused ring stopped),
 *     SET_VRING_CALL and SET_VRING_ERR with their fds, SET_VRING_ENABLE (with protocol features), and
 *     last SET_VRING_KICK with its fd if the ring ran: it starts the ring in the new process;</li>
 * <li>SET_STATUS, if STATUS was negotiated.</li>
 * </ol>
 *
 * The fds are borrowed: they stay the old session's (the kernel duplicates them into the new process).
 *
 * <p>A two-phase handover sends it in two {@link Part}s: the {@link Part#SETUP} while the rings still run
 * (the connection is not read meanwhile, so nothing in it changes) and the {@link Part#RINGS} once they
 * are paused; the two together are {@link Part#ALL}, in an order the new session accepts (SET_VRING_BASE
 * after SET_VRING_ENABLE only sets the next start's position).
 */
public final class SessionImage {

    /** Which requests of the image. */
    public enum Part {
        /** Everything, in the order above. */
        ALL,
        /** All but where the running rings stand: their SET_VRING_BASE and SET_VRING_KICK. Valid while they run. */
        SETUP,
        /** SET_VRING_BASE and SET_VRING_KICK of each paused ring: valid once they are paused. */
        RINGS
    }

    /** One request of the image: its code, payload (wire order) and the fds to send with it. */
    public record Request(int code, ByteBuffer payload, int[] fds) {
        public String name() {
            return FrontendRequest.nameOf(code);
        }
    }

    private final List<Request> requests = new ArrayList<>();

    private SessionImage() {
    }

    public List<Request> requests() {
        return List.copyOf(requests);
    }

    /**
     * The image of a session whose rings are paused ({@link VringLifecycle#pause}), or only its {@code part};
     * {@link Part#SETUP} may be taken while they run.
     */
    static SessionImage of(FeatureNegotiation negotiation, MemoryTable memory, VringLifecycle vrings, int status,
            Part part) {
        SessionImage image = new SessionImage();
        if (part == Part.RINGS) {
            for (QueueConfig q : vrings.configs()) {
                if (q.paused) {
                    image.addPosition(q);
                }
            }
            return image;
        }
        long protocol = negotiation.protocol();
        long features = negotiation.acked();
        boolean withProtocol = (features & VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES) != 0 || protocol != 0;
        if (protocol != 0) {
            image.add(FrontendRequest.SET_PROTOCOL_FEATURES, U64Layout.of(protocol));
        }
        if (features != 0) {
            image.add(FrontendRequest.SET_FEATURES, U64Layout.of(features));
        }
        image.addMemory(memory, (protocol & ProtocolFeatures.CONFIGURE_MEM_SLOTS) != 0);
        for (QueueConfig q : vrings.configs()) {
            image.addRing(q, withProtocol, part == Part.ALL || !q.started());
        }
        if ((protocol & ProtocolFeatures.STATUS) != 0) {
            image.add(FrontendRequest.SET_STATUS, U64Layout.of(status));
        }
        return image;
    }

    private void addMemory(MemoryTable memory, boolean slots) {
        List<MappedRegion> regions = memory.regions();
        if (regions.isEmpty()) {
            return;
        }
        if (slots) {
            for (MappedRegion r : regions) {
                for (int i = 0; i <= memory.duplicateAdds(r); i++) {
                    add(FrontendRequest.ADD_MEM_REG, SingleMemRegionLayout.of(r.spec()), r.fd());
                }
            }
            return;
        }
        List<RegionSpec> specs = new ArrayList<>();
        int[] fds = new int[regions.size()];
        for (int i = 0; i < regions.size(); i++) {
            specs.add(regions.get(i).spec());
            fds[i] = regions.get(i).fd();
        }
        // without CONFIGURE_MEM_SLOTS the table came in one SET_MEM_TABLE: at most MemoryTableLayout.MAX_REGIONS
        add(FrontendRequest.SET_MEM_TABLE, MemoryTableLayout.of(specs), fds);
    }

    private void addRing(QueueConfig q, boolean withProtocol, boolean withPosition) {
        int i = q.index;
        if (q.num != 0) {
            add(FrontendRequest.SET_VRING_NUM, VringStateLayout.of(i, q.num));
        }
        if (q.addrSet) {
            add(FrontendRequest.SET_VRING_ADDR, VringAddrLayout.of(i, q.logUsed ? VringAddrLayout.F_LOG : 0,
                    q.descUser, q.usedUser, q.availUser, q.logGuestAddress));
        }
        if (withPosition) {
            add(FrontendRequest.SET_VRING_BASE, VringStateLayout.of(i, q.base));
        }
        if (q.callFd >= 0) {
            add(FrontendRequest.SET_VRING_CALL, U64Layout.of(i), q.callFd);
        }
        if (q.errFd >= 0) {
            add(FrontendRequest.SET_VRING_ERR, U64Layout.of(i), q.errFd);
        }
        if (withProtocol) {
            add(FrontendRequest.SET_VRING_ENABLE, VringStateLayout.of(i, q.enabled ? 1 : 0));
        }
        if (withPosition && q.paused) {
            add(FrontendRequest.SET_VRING_KICK, U64Layout.of(i), q.kickFd);
        }
    }

    /** Where a paused ring stands, and its start. */
    private void addPosition(QueueConfig q) {
        add(FrontendRequest.SET_VRING_BASE, VringStateLayout.of(q.index, q.base));
        add(FrontendRequest.SET_VRING_KICK, U64Layout.of(q.index), q.kickFd);
    }

    private void add(FrontendRequest r, ByteBuffer payload, int... fds) {
        requests.add(new Request(r.code(), payload, fds));
    }
}
