package org.jvhost.engine.session;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeoutException;
import org.jvhost.engine.event.DeviceRuntime;
import org.jvhost.engine.event.EventfdNotifier;
import org.jvhost.engine.event.QueueStats;
import org.jvhost.engine.event.Worker;
import org.jvhost.engine.memory.GuestMemoryMap;
import org.jvhost.engine.memory.MappedRegion;
import org.jvhost.engine.memory.MemoryBudget;
import org.jvhost.engine.memory.MemoryMapException;
import org.jvhost.engine.memory.RegionSpec;
import org.jvhost.engine.protocol.ConfigLayout;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.MemoryTableLayout;
import org.jvhost.engine.protocol.Payloads;
import org.jvhost.engine.protocol.ProtocolException;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.engine.protocol.SingleMemRegionLayout;
import org.jvhost.engine.protocol.U64Layout;
import org.jvhost.engine.protocol.VringAddrLayout;
import org.jvhost.engine.protocol.VringStateLayout;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.jvhost.engine.transport.Endpoint;
import org.jvhost.engine.transport.Message;
import org.jvhost.engine.virtq.CallNotifier;
import org.jvhost.engine.virtq.SplitQueue;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.VirtioFeatures;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The back-end side of one vhost-user connection. A control loop calls {@link #onReadable()} whenever
 * the socket has data, until the front-end goes away or breaks the protocol; {@link #close()} then
 * returns the device to its initial state and releases every fd and mapping the connection brought.
 *
 * <h2>Failures</h2>
 * A malformed message closes the connection. A refused request (not implemented, feature not
 * negotiated, bad queue index, ring size or config range) gets a REPLY_ACK failure when the front-end
 * set NEED_REPLY and REPLY_ACK was negotiated; otherwise the spec leaves no way to say no, so the
 * connection is closed with an ERROR naming the request and the fault.
 *
 * <h2>Rings</h2>
 * Spec "Ring states": a ring is started by SET_VRING_KICK and stopped by GET_VRING_BASE; enabled and
 * disabled by SET_VRING_ENABLE (or all enabled by a SET_FEATURES without VHOST_USER_F_PROTOCOL_FEATURES).
 * The device holds the queue only while the ring is started and enabled.
 */
public final class BackendSession {
    private static final Logger LOG = LoggerFactory.getLogger(BackendSession.class);
    /** GET_MAX_MEM_SLOTS: as many as QEMU's largest (KVM's 509 user memslots), for virtio-mem hot-plug. */
    static final int MAX_MEM_SLOTS = 509;
    /** Split rings hold at most 32768 descriptors (virtio 1.2 section 2.7). */
    private static final int MAX_RING_SIZE = 32768;
    /** Requests handled per readiness event before the control loop serves other connections. */
    private static final int MESSAGES_PER_TURN = 16;

    private final DeviceRuntime runtime;
    private final VhostUserDevice device;
    private final Endpoint endpoint;
    private final String name;
    private final QueueConfig[] rings;
    /** This connection's share of the host's guest-memory budget; every region it maps counts here. */
    private final MemoryBudget.Account memoryAccount;

    private long ackedFeatures;
    private boolean featuresSet;
    private long ackedProtocol;
    private int status;
    private GuestMemoryMap memory;
    private List<MappedRegion> regions = List.of();
    /**
     * How many more times than once each region was added. QEMU runs one vhost_dev per queue pair of a
     * multiqueue NIC over the same socket, and each adds the guest's RAM with ADD_MEM_REG; each later
     * removes it again with REM_MEM_REG. A region leaves only when the last of them removes it.
     */
    private final Map<MappedRegion, Integer> duplicateAdds = new HashMap<>();
    /** A worker did not answer: a device callback hangs, so memory it may be reading is never unmapped. */
    private boolean workerStuck;
    private boolean closed;

    public BackendSession(DeviceRuntime runtime, Endpoint endpoint) {
        this.runtime = runtime;
        this.device = runtime.device();
        this.endpoint = endpoint;
        this.name = runtime.name();
        this.memoryAccount = runtime.memoryBudget().newAccount();
        this.rings = new QueueConfig[device.maxQueues()];
        for (int i = 0; i < rings.length; i++) {
            rings[i] = new QueueConfig(i);
        }
    }

    /**
     * Handles the requests that have arrived, without waiting for more: a request split over several
     * reads stays buffered in the endpoint until its last byte comes. Runs on the connection's control
     * loop, like every other method here.
     *
     * @return false if the connection has ended (the front-end left, or broke the protocol); the caller
     *         then calls {@link #close()}
     */
    public boolean onReadable() {
        // a bounded batch, so a chatty front-end cannot starve the loop's other connections; the
        // level-triggered socket brings the loop back for the rest
        for (int i = 0; i < MESSAGES_PER_TURN; i++) {
            Message m;
            try {
                m = endpoint.receive();
            } catch (Endpoint.ClosedException e) {
                LOG.info("{}: front-end disconnected", name);
                return false;
            } catch (ProtocolException e) {
                LOG.error("{}: malformed message, closing the connection: {}", name, e.getMessage());
                return false;
            } catch (IOException e) {
                LOG.info("{}: connection ended: {}", name, e.getMessage());
                return false;
            }
            if (m == null) {
                return true;
            }
            if (!serve(m)) {
                return false;
            }
        }
        return true;
    }

    /** Whether part of a request has arrived and the rest has not (for the partial-message deadline). */
    public boolean inMessage() {
        return endpoint.inMessage();
    }

    /** When the first bytes of the incomplete request came ({@link System#nanoTime()}); valid while {@link #inMessage()}. */
    public long messageStartedNanos() {
        return endpoint.messageStartedNanos();
    }

    /** Ends the connection: stops every ring, resets the device, releases every fd and mapping. Idempotent. */
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            reset(false);
        } finally {
            endpoint.close();
        }
    }

    private boolean serve(Message m) {
        try {
            return handle(m);
        } catch (IOException e) {
            LOG.info("{}: cannot reply to {}: {}", name, m.name(), e.getMessage());
            return false;
        } finally {
            m.closeFds();
        }
    }

    private boolean handle(Message m) throws IOException {
        int code = m.header().request();
        boolean ackWanted = m.header().needReply();
        ByteBuffer reply;
        try {
            reply = dispatch(m);
        } catch (ProtocolException e) {
            if (m.request() == FrontendRequest.GET_CONFIG && !e.isMalformed()) {
                // spec, GET_CONFIG: "vhost-user back-end uses zero length of payload to indicate an error"
                // (an 8-byte ack would be read as config bytes, and the request has its own reply)
                LOG.warn("{}: {} refused: {}", name, m.name(), e.getMessage(), e.getCause());
                endpoint.reply(code, Payloads.allocate(0));
                return true;
            }
            if (ackWanted && has(ProtocolFeatures.REPLY_ACK)) {
                LOG.warn("{}: {} refused: {}", name, m.name(), e.getMessage(), e.getCause());
                endpoint.reply(code, U64Layout.of(1));
                return true;
            }
            LOG.error("{}: {} failed and the front-end did not ask for a REPLY_ACK, closing the connection: {}",
                    name, m.name(), e.getMessage(), e.getCause());
            return false;
        }
        LOG.debug("{}: {} done", name, m.header());
        if (reply != null) {
            endpoint.reply(code, reply);
        } else if (ackWanted && has(ProtocolFeatures.REPLY_ACK)) {
            // spec: with REPLY_ACK and NEED_REPLY, every request without a reply of its own gets u64 0 on success
            endpoint.reply(code, U64Layout.of(0));
        }
        return true;
    }

    /** One arm per request; returns the reply payload, or null for requests without one. */
    private ByteBuffer dispatch(Message m) throws ProtocolException {
        FrontendRequest r = m.request();
        ByteBuffer p = m.payload();
        if (r == null) {
            throw ProtocolException.failed("request code " + Integer.toUnsignedString(m.header().request())
                    + " is not defined by the vhost-user spec");
        }
        switch (r) {
            case GET_FEATURES: return U64Layout.of(offeredFeatures());
            case SET_FEATURES: setFeatures(U64Layout.get(p)); return null;
            case SET_OWNER: return null; // one front-end per connection: nothing to record
            case RESET_OWNER: reset(true); return null;
            case SET_MEM_TABLE: setMemTable(m); return null;
            case SET_VRING_NUM: setVringNum(p); return null;
            case SET_VRING_ADDR: setVringAddr(p); return null;
            case SET_VRING_BASE: setVringBase(p); return null;
            case GET_VRING_BASE: return getVringBase(p);
            case SET_VRING_KICK: setVringKick(m); return null;
            case SET_VRING_CALL: setVringCall(m); return null;
            case SET_VRING_ERR: setVringErr(m); return null;
            case GET_PROTOCOL_FEATURES: return U64Layout.of(offeredProtocol());
            case SET_PROTOCOL_FEATURES: setProtocolFeatures(U64Layout.get(p)); return null;
            case GET_QUEUE_NUM: require(ProtocolFeatures.MQ, r); return U64Layout.of(device.maxQueues());
            case SET_VRING_ENABLE: setVringEnable(p); return null;
            case GET_CONFIG: require(ProtocolFeatures.CONFIG, r); return getConfig(p);
            case SET_CONFIG: require(ProtocolFeatures.CONFIG, r); setConfig(p); return null;
            case RESET_DEVICE: require(ProtocolFeatures.RESET_DEVICE, r); reset(true); return null;
            case GET_MAX_MEM_SLOTS: require(ProtocolFeatures.CONFIGURE_MEM_SLOTS, r); return U64Layout.of(MAX_MEM_SLOTS);
            case ADD_MEM_REG: require(ProtocolFeatures.CONFIGURE_MEM_SLOTS, r); addMemReg(m); return null;
            case REM_MEM_REG: require(ProtocolFeatures.CONFIGURE_MEM_SLOTS, r); remMemReg(p); return null;
            case SET_STATUS: require(ProtocolFeatures.STATUS, r); status = (int) (U64Layout.get(p) & 0xff); return null;
            case GET_STATUS: require(ProtocolFeatures.STATUS, r); return U64Layout.of(status);
            default:
                throw ProtocolException.failed(r + " is not implemented by jvhost (its feature is never offered)");
        }
    }

    // ---- features -------------------------------------------------------------------------------

    private long offeredFeatures() {
        return device.features() | VirtioFeatures.HOST_TRANSPORT | VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES;
    }

    private long offeredProtocol() {
        return ProtocolFeatures.IMPLEMENTED | (device.configSize() > 0 ? ProtocolFeatures.CONFIG : 0);
    }

    private boolean has(long protocolFeature) {
        return (ackedProtocol & protocolFeature) != 0;
    }

    private void require(long protocolFeature, FrontendRequest r) throws ProtocolException {
        if (!has(protocolFeature)) {
            throw ProtocolException.failed(r + " needs protocol feature bit "
                    + Long.numberOfTrailingZeros(protocolFeature) + ", which was not negotiated");
        }
    }

    private void setFeatures(long features) throws ProtocolException {
        long unoffered = features & ~offeredFeatures();
        if (unoffered != 0) {
            throw ProtocolException.failed(String.format(
                    "SET_FEATURES 0x%x includes bits never offered: 0x%x", features, unoffered));
        }
        QueueConfig running = firstStarted();
        if (running != null && features != ackedFeatures) {
            throw ProtocolException.failed(String.format("SET_FEATURES 0x%x while queue %d runs with 0x%x",
                    features, running.index, ackedFeatures));
        }
        if (running == null) {
            try {
                device.ackFeatures(features & ~VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES);
            } catch (RuntimeException e) {
                throw ProtocolException.failed("SET_FEATURES: the device refused 0x" + Long.toHexString(features), e);
            }
        }
        ackedFeatures = features;
        featuresSet = true;
        runtime.setNegotiatedFeatures(features);
        if ((features & VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES) == 0) {
            // spec: "If VHOST_USER_F_PROTOCOL_FEATURES has not been negotiated, the ring starts directly in
            // the enabled state."
            for (QueueConfig q : rings) {
                setEnabled(q, true);
            }
        }
    }

    private void setProtocolFeatures(long features) throws ProtocolException {
        long unoffered = features & ~offeredProtocol();
        if (unoffered != 0) {
            throw ProtocolException.failed(String.format(
                    "SET_PROTOCOL_FEATURES 0x%x includes bits never offered: 0x%x", features, unoffered));
        }
        ackedProtocol = features;
    }

    // ---- memory ---------------------------------------------------------------------------------

    /**
     * Replaces the memory table. A region already mapped from the same file range is kept, not mapped
     * again: QEMU resends the whole table at every layout change, and mapping it twice would, for a
     * moment, count the guest's memory twice against the connection's limit.
     */
    private void setMemTable(Message m) throws ProtocolException {
        List<RegionSpec> specs = MemoryTableLayout.regions(m.payload());
        List<MappedRegion> table = new ArrayList<>(specs.size());
        List<MappedRegion> fresh = new ArrayList<>(specs.size());
        try {
            for (int i = 0; i < specs.size(); i++) {
                int fd = m.takeFd(i);
                MappedRegion kept = mappedFrom(specs.get(i), fd);
                if (kept != null) {
                    LinuxSys.closeQuietly(fd);
                    table.add(kept);
                } else {
                    MappedRegion r = MappedRegion.map(specs.get(i), fd, memoryAccount);
                    fresh.add(r);
                    table.add(r);
                }
            }
            installMemory(GuestMemoryMap.of(table), table);
            duplicateAdds.clear();
        } catch (MemoryMapException e) {
            fresh.forEach(MappedRegion::unmap);
            throw ProtocolException.failed("SET_MEM_TABLE: " + e.getMessage(), e);
        }
    }

    /** The current region that maps {@code spec} from the file behind {@code fd}, or null. */
    private MappedRegion mappedFrom(RegionSpec spec, int fd) {
        for (MappedRegion r : regions) {
            if (r.isMappingOf(spec, fd)) {
                return r;
            }
        }
        return null;
    }

    private void addMemReg(Message m) throws ProtocolException {
        RegionSpec spec = SingleMemRegionLayout.region(m.payload());
        MappedRegion same = sameRegion(spec);
        if (same != null) {
            LinuxSys.closeQuietly(m.takeFd(0)); // already mapped from an identical fd range
            duplicateAdds.merge(same, 1, Integer::sum);
            return;
        }
        if (regions.size() >= MAX_MEM_SLOTS) {
            throw ProtocolException.failed("ADD_MEM_REG: all " + MAX_MEM_SLOTS + " memory slots are in use (" + spec + ")");
        }
        MappedRegion added = null;
        try {
            added = MappedRegion.map(spec, m.takeFd(0), memoryAccount);
            List<MappedRegion> next = new ArrayList<>(regions);
            next.add(added);
            installMemory(GuestMemoryMap.of(next), next);
        } catch (MemoryMapException e) {
            if (added != null) {
                added.unmap();
            }
            throw ProtocolException.failed("ADD_MEM_REG: " + e.getMessage(), e);
        }
    }

    private void remMemReg(ByteBuffer p) throws ProtocolException {
        RegionSpec spec = SingleMemRegionLayout.region(p);
        MappedRegion same = sameRegion(spec);
        if (same == null) {
            throw ProtocolException.failed("REM_MEM_REG: no mapped region matches " + spec);
        }
        Integer duplicates = duplicateAdds.remove(same);
        if (duplicates != null) {
            if (duplicates > 1) {
                duplicateAdds.put(same, duplicates - 1);
            }
            return; // another vhost_dev of this connection still uses the region
        }
        List<MappedRegion> next = new ArrayList<>(regions);
        next.remove(same);
        try {
            installMemory(GuestMemoryMap.of(next), next);
        } catch (MemoryMapException e) {
            throw ProtocolException.failed("REM_MEM_REG: " + e.getMessage(), e);
        }
    }

    /**
     * The mapped region the front-end identifies by {@code spec}: same guest address, size and user
     * address (QEMU may send a different mmap_offset when removing than it added with).
     */
    private MappedRegion sameRegion(RegionSpec spec) {
        for (MappedRegion r : regions) {
            RegionSpec s = r.spec();
            if (s.guestAddress() == spec.guestAddress() && s.size() == spec.size()
                    && s.userAddress() == spec.userAddress()) {
                return r;
            }
        }
        return null;
    }

    /**
     * Makes {@code next} the guest memory: running queues switch to it on their workers first, and only
     * then are the regions that left the table unmapped, so no queue ever reads an unmapped page.
     */
    private void installMemory(GuestMemoryMap next, List<MappedRegion> nextRegions) throws ProtocolException {
        List<MappedRegion> old = regions;
        memory = next;
        regions = List.copyOf(nextRegions);
        if (next.mayFault()) {
            runtime.setMemoryMayFault(true); // before any queue reads the new memory
        }
        for (QueueConfig q : rings) {
            if (q.started()) {
                Ring ring = q.ring;
                onWorker(ring.worker, () -> ring.queue.updateMemory(next), "memory update of queue " + q.index);
            }
        }
        runtime.setMemoryMayFault(next.mayFault()); // no queue reads the old memory any more
        for (MappedRegion r : old) {
            if (!regions.contains(r)) {
                unmapUnlessStuck(r);
            }
        }
    }

    private void unmapUnlessStuck(MappedRegion r) {
        if (workerStuck) {
            LOG.error("{}: leaving {} mapped: a worker did not answer and may still read it", name, r.spec());
        } else {
            r.unmap();
        }
    }

    // ---- rings ----------------------------------------------------------------------------------

    private QueueConfig ring(FrontendRequest r, int index) throws ProtocolException {
        if (index < 0 || index >= rings.length) {
            throw ProtocolException.failed(r + ": queue index " + Integer.toUnsignedString(index)
                    + " out of range (the device has " + rings.length + " queues)");
        }
        return rings[index];
    }

    private QueueConfig stoppedRing(FrontendRequest r, int index) throws ProtocolException {
        QueueConfig q = ring(r, index);
        if (q.started()) {
            // spec: ring parameters may only change while the ring is stopped
            throw ProtocolException.failed(r + ": queue " + index + " is started; stop it with GET_VRING_BASE first");
        }
        return q;
    }

    private void setVringNum(ByteBuffer p) throws ProtocolException {
        QueueConfig q = stoppedRing(FrontendRequest.SET_VRING_NUM, VringStateLayout.index(p));
        int num = VringStateLayout.num(p);
        int max = Math.min(MAX_RING_SIZE, device.maxQueueSize());
        if (num <= 0 || num > max || Integer.bitCount(num) != 1) {
            throw ProtocolException.failed("SET_VRING_NUM: queue " + q.index + " size "
                    + Integer.toUnsignedString(num) + " is not a power of two between 1 and " + max);
        }
        q.num = num;
    }

    private void setVringAddr(ByteBuffer p) throws ProtocolException {
        QueueConfig q = stoppedRing(FrontendRequest.SET_VRING_ADDR, VringAddrLayout.index(p));
        if ((VringAddrLayout.flags(p) & VringAddrLayout.F_LOG) != 0) {
            throw ProtocolException.failed("SET_VRING_ADDR: queue " + q.index
                    + " asks for used-ring logging, but VHOST_F_LOG_ALL is not offered");
        }
        q.descUser = VringAddrLayout.desc(p);
        q.usedUser = VringAddrLayout.used(p);
        q.availUser = VringAddrLayout.avail(p);
        q.addrSet = true;
    }

    private void setVringBase(ByteBuffer p) throws ProtocolException {
        QueueConfig q = stoppedRing(FrontendRequest.SET_VRING_BASE, VringStateLayout.index(p));
        int base = VringStateLayout.num(p);
        if (base < 0 || base > 0xffff) {
            throw ProtocolException.failed("SET_VRING_BASE: queue " + q.index + " base "
                    + Integer.toUnsignedString(base) + " exceeds the split ring's 16-bit index");
        }
        q.base = base;
    }

    private ByteBuffer getVringBase(ByteBuffer p) throws ProtocolException {
        QueueConfig q = ring(FrontendRequest.GET_VRING_BASE, VringStateLayout.index(p));
        if (q.started()) {
            stop(q);
            if (firstStarted() == null) {
                suspendDevice();
            }
        }
        return VringStateLayout.of(q.index, q.base);
    }

    private void setVringKick(Message m) throws ProtocolException {
        long v = U64Layout.get(m.payload());
        QueueConfig q = ring(FrontendRequest.SET_VRING_KICK, (int) (v & U64Layout.VRING_INDEX_MASK));
        if ((v & U64Layout.VRING_NOFD_MASK) != 0) {
            throw ProtocolException.failed("SET_VRING_KICK: queue " + q.index
                    + " without a kick fd (polling mode) is not supported");
        }
        int fd = m.takeFd(0);
        int old = q.kickFd;
        q.kickFd = fd;
        if (q.started()) {
            // a new kick fd for a running ring (PR rust-vmm/vhost #227: must not stop or disable it)
            Ring ring = q.ring;
            onWorker(ring.worker, () -> {
                try {
                    ring.replaceKick(fd);
                } catch (NativeException e) {
                    throw new IllegalStateException(e.getMessage(), e);
                }
            }, "kick fd switch of queue " + q.index);
            closeAfterWorker(old);
        } else {
            closeAfterWorker(old);
            start(q);
        }
    }

    private void setVringCall(Message m) throws ProtocolException {
        long v = U64Layout.get(m.payload());
        QueueConfig q = ring(FrontendRequest.SET_VRING_CALL, (int) (v & U64Layout.VRING_INDEX_MASK));
        int fd = (v & U64Layout.VRING_NOFD_MASK) != 0 ? -1 : m.takeFd(0);
        int old = q.callFd;
        q.callFd = fd;
        if (q.started()) {
            // swap on the worker so the old fd is never written after we close it (its number could be reused)
            Ring ring = q.ring;
            CallNotifier n = notifier(q);
            onWorker(ring.worker, () -> ring.queue.setNotifier(n), "call fd switch of queue " + q.index);
        }
        closeAfterWorker(old);
    }

    private void setVringErr(Message m) throws ProtocolException {
        long v = U64Layout.get(m.payload());
        QueueConfig q = ring(FrontendRequest.SET_VRING_ERR, (int) (v & U64Layout.VRING_INDEX_MASK));
        int old = q.errFd;
        q.errFd = (v & U64Layout.VRING_NOFD_MASK) != 0 ? -1 : m.takeFd(0);
        if (q.started()) {
            // swap on the worker so the old fd is never written after we close it
            Ring ring = q.ring;
            CallNotifier n = errorNotifier(q);
            onWorker(ring.worker, () -> ring.queue.setErrorNotifier(n), "error fd switch of queue " + q.index);
        }
        closeAfterWorker(old);
    }

    private void setVringEnable(ByteBuffer p) throws ProtocolException {
        QueueConfig q = ring(FrontendRequest.SET_VRING_ENABLE, VringStateLayout.index(p));
        int on = VringStateLayout.num(p);
        if (on != 0 && on != 1) {
            throw ProtocolException.failed("SET_VRING_ENABLE: queue " + q.index + " state " + on + " is not 0 or 1");
        }
        setEnabled(q, on == 1);
    }

    private void setEnabled(QueueConfig q, boolean on) throws ProtocolException {
        q.enabled = on;
        if (q.started()) {
            Ring ring = q.ring;
            onWorker(ring.worker, on ? ring::handOver : ring::takeBack,
                    (on ? "enable" : "disable") + " of queue " + q.index);
        }
    }

    /** Starts a ring whose kick fd just arrived: build the live queue and watch the kick on its worker. */
    private void start(QueueConfig q) throws ProtocolException {
        String what = "SET_VRING_KICK: queue " + q.index + " cannot start: ";
        if (memory == null) {
            throw ProtocolException.failed(what + "no memory table (SET_MEM_TABLE) yet");
        }
        if (q.num == 0 || !q.addrSet) {
            throw ProtocolException.failed(what + (q.num == 0 ? "no SET_VRING_NUM" : "no SET_VRING_ADDR") + " yet");
        }
        long desc = translate(q, "descriptor table", q.descUser, 16L * q.num);
        long avail = translate(q, "avail ring", q.availUser, 6L + 2L * q.num);
        long used = translate(q, "used ring", q.usedUser, 6L + 8L * q.num);
        SplitQueue queue;
        try {
            queue = new SplitQueue(q.index, q.num, desc, avail, used, ackedFeatures, memory, q.base, notifier(q));
        } catch (IllegalArgumentException e) {
            throw ProtocolException.failed(what + e.getMessage(), e);
        }
        // spec: the back-end signals the error eventfd when the ring hits an error (a hostile descriptor)
        queue.setErrorNotifier(errorNotifier(q));
        Worker worker = runtime.workerForQueue(q.index);
        Ring ring = new Ring(q.index, queue, worker, runtime, q.kickFd);
        boolean enabled = q.enabled;
        onWorker(worker, () -> {
            try {
                ring.watchKick();
            } catch (NativeException e) {
                throw new IllegalStateException("kick fd " + e.getMessage(), e);
            }
            if (enabled) {
                ring.handOver();
            }
        }, "start of queue " + q.index);
        q.ring = ring;
    }

    private long translate(QueueConfig q, String what, long userAddress, long len) throws ProtocolException {
        long gpa = memory.userToGuest(userAddress, len);
        if (gpa == -1) {
            throw ProtocolException.failed(String.format("SET_VRING_KICK: queue %d cannot start: %s at user "
                    + "address 0x%x (%d bytes) is not inside one memory region", q.index, what, userAddress, len));
        }
        return gpa;
    }

    /** Stops a started ring, remembering where it stopped as the next base. */
    private void stop(QueueConfig q) throws ProtocolException {
        Ring ring = q.ring;
        int[] next = {q.base};
        try {
            onWorker(ring.worker, () -> {
                ring.stop();
                next[0] = ring.queue.nextAvail() & 0xffff;
            }, "stop of queue " + q.index);
        } finally {
            q.ring = null;
            q.base = next[0];
            // the ring restarts only with a new SET_VRING_KICK, which brings its own fd
            closeAfterWorker(q.kickFd);
            q.kickFd = -1;
        }
    }

    private CallNotifier notifier(QueueConfig q) {
        return q.callFd < 0 ? CallNotifier.NONE
                : new EventfdNotifier(q.callFd, name + " queue " + q.index, runtime.queueStats(q.index));
    }

    /** Signals the error eventfd, if any, and counts the break as an error of the queue either way. */
    private CallNotifier errorNotifier(QueueConfig q) {
        CallNotifier fd = q.errFd < 0 ? CallNotifier.NONE
                : new EventfdNotifier(q.errFd, name + " queue " + q.index + " error");
        QueueStats stats = runtime.queueStats(q.index);
        return () -> {
            stats.failed();
            fd.signal();
        };
    }

    private QueueConfig firstStarted() {
        for (QueueConfig q : rings) {
            if (q.started()) {
                return q;
            }
        }
        return null;
    }

    // ---- config ---------------------------------------------------------------------------------

    private int[] configRange(FrontendRequest r, ByteBuffer p) throws ProtocolException {
        int offset = ConfigLayout.offset(p);
        int size = ConfigLayout.size(p);
        if (offset < 0 || (long) offset + size > device.configSize()) {
            throw ProtocolException.failed(r + ": range offset " + Integer.toUnsignedString(offset) + " size " + size
                    + " exceeds the device's " + device.configSize() + "-byte config space");
        }
        return new int[] {offset, size};
    }

    private ByteBuffer getConfig(ByteBuffer p) throws ProtocolException {
        int[] range = configRange(FrontendRequest.GET_CONFIG, p);
        byte[] bytes = new byte[range[1]];
        try {
            device.readConfig(range[0], bytes);
        } catch (RuntimeException e) {
            throw ProtocolException.failed("GET_CONFIG: the device failed to read its config space", e);
        }
        return ConfigLayout.of(range[0], ConfigLayout.flags(p), bytes);
    }

    private void setConfig(ByteBuffer p) throws ProtocolException {
        int[] range = configRange(FrontendRequest.SET_CONFIG, p);
        try {
            device.writeConfig(range[0], ConfigLayout.bytes(p));
        } catch (RuntimeException e) {
            throw ProtocolException.failed("SET_CONFIG: the device failed to write its config space", e);
        }
    }

    // ---- reset ----------------------------------------------------------------------------------

    /**
     * Back to the initial state: every ring stopped, device reset, memory unmapped, every fd closed.
     * RESET_OWNER/RESET_DEVICE keep the negotiated protocol features: QEMU negotiates them once per
     * connection and keeps sending NEED_REPLY afterwards, so forgetting REPLY_ACK would hang it. A
     * disconnect ({@code keepProtocol} false) forgets everything.
     */
    private void reset(boolean keepProtocol) {
        for (QueueConfig q : rings) {
            if (q.started()) {
                try {
                    stop(q);
                } catch (ProtocolException e) {
                    LOG.error("{}: {}", name, e.getMessage());
                }
            }
            q.clear();
        }
        try {
            device.reset();
        } catch (RuntimeException e) {
            LOG.error("{}: device reset failed", name, e);
        }
        runtime.clearFailure();
        regions.forEach(this::unmapUnlessStuck);
        regions = List.of();
        duplicateAdds.clear();
        memory = null;
        ackedFeatures = 0;
        featuresSet = false;
        runtime.setNegotiatedFeatures(0);
        status = 0;
        if (!keepProtocol) {
            ackedProtocol = 0;
        }
    }

    private void suspendDevice() {
        try {
            device.suspend();
        } catch (RuntimeException e) {
            LOG.warn("{}: device suspend failed", name, e);
        }
    }

    // ---- worker commands ------------------------------------------------------------------------

    private void onWorker(Worker worker, Runnable command, String what) throws ProtocolException {
        try {
            worker.call(command, DeviceRuntime.WORKER_TIMEOUT_MS);
        } catch (TimeoutException e) {
            workerStuck = true;
            throw ProtocolException.failed(what + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            throw ProtocolException.failed(what + " failed: " + e.getMessage(), e);
        }
    }

    private void closeAfterWorker(int fd) {
        // callers reach here after the worker has stopped using the fd (or never used it)
        org.jvhost.engine.sys.LinuxSys.closeQuietly(fd);
    }

    /** Negotiated virtio features (for logs and tests). */
    long ackedFeatures() {
        return featuresSet ? ackedFeatures : 0;
    }
}
