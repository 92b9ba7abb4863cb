package org.jvhost.engine.session;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BiConsumer;
import java.util.function.Supplier;
import org.jvhost.engine.device.DeviceRuntime;
import org.jvhost.engine.event.EventfdNotifier;
import org.jvhost.engine.event.QueueStats;
import org.jvhost.engine.event.Worker;
import org.jvhost.engine.instrument.SessionTap;
import org.jvhost.engine.memory.GuestMemoryMap;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.ProtocolException;
import org.jvhost.engine.protocol.U64Layout;
import org.jvhost.engine.protocol.VringAddrLayout;
import org.jvhost.engine.protocol.VringStateLayout;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.jvhost.engine.transport.Message;
import org.jvhost.engine.virtq.CallNotifier;
import org.jvhost.engine.virtq.InflightRing;
import org.jvhost.engine.virtq.RingLog;
import org.jvhost.engine.virtq.HostQueue;
import org.jvhost.engine.virtq.PackedQueue;
import org.jvhost.engine.virtq.SplitQueue;
import org.jvhost.spi.VirtioFeatures;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The rings of one connection (spec "Ring states"): the passive {@link QueueConfig} of each, filled by
 * SET_VRING_NUM/ADDR/BASE and the eventfds, and the live {@link Ring} between SET_VRING_KICK (start)
 * and GET_VRING_BASE (stop). SET_VRING_ENABLE, or a SET_FEATURES without
 * VHOST_USER_F_PROTOCOL_FEATURES, enables a ring; the device holds the queue only while its ring is
 * started and enabled.
 *
 * <p>Everything that touches a running ring is a step of the request's {@link WorkerPlan}, run by the
 * ring's worker; what the worker let go of (an old eventfd) is released in a control-thread step after
 * it. Control thread only.
 */
final class VringLifecycle {
    /** Split rings hold at most 32768 descriptors (virtio 1.2 section 2.7). */
    private static final int MAX_RING_SIZE = 32768;
    private static final Logger LOG = LoggerFactory.getLogger(VringLifecycle.class);

    private final DeviceRuntime runtime;
    private final String name;
    private final MemoryTable memory;
    private final DirtyLogging logging;
    private final QueueConfig[] rings;
    /** The connection's instrument tap: it gives each started ring's queue as the device sees it. */
    private final SessionTap tap;
    private long features;
    /** The connection's inflight region, or null before {@link #setInflight}. */
    private InflightTracking inflight;

    VringLifecycle(DeviceRuntime runtime, MemoryTable memory, DirtyLogging logging, SessionTap tap) {
        this.runtime = runtime;
        this.tap = tap;
        this.name = runtime.name();
        this.memory = memory;
        this.logging = logging;
        this.rings = new QueueConfig[runtime.device().maxQueues()];
        for (int i = 0; i < rings.length; i++) {
            rings[i] = new QueueConfig(i);
        }
    }

    /** Where started rings record their chains in flight (a device that opted in; else never mapped). */
    void setInflight(InflightTracking inflight) {
        this.inflight = inflight;
    }

    /** The negotiated virtio features rings start with (SET_FEATURES). */
    void setFeatures(long features) {
        this.features = features;
    }

    /** Every ring's configuration, in index order (for a hot upgrade's image of the connection). */
    List<QueueConfig> configs() {
        return List.of(rings);
    }

    /**
     * Hot upgrade: stops every started ring on its worker as GET_VRING_BASE would (the device finishes
     * the kick it is handling and gives the queue back, so the ring stops between two chains), without
     * telling the front-end, and keeps its kick fd: {@code base} is then where the ring stopped.
     *
     * <p>Highest index first, and the new process starts them lowest first: a network card's TX queue
     * (2n+1) delivers into its RX queue (2n), so TX must stop before RX and start after it. In the other
     * order, frames the TX queue took in between would find no RX queue and be dropped (seen with
     * testpmd: all 128 frames of an io round trip lost at once).
     */
    void pause(WorkerPlan plan) {
        List<QueueConfig> started = started();
        java.util.Collections.reverse(started);
        RingStops.stop(started, plan, true);
    }

    /**
     * The hot upgrade was abandoned: the paused rings start again from where they stopped. A ring that
     * cannot start (its memory went away meanwhile) is logged and stays stopped.
     */
    void unpause(WorkerPlan plan) {
        for (QueueConfig q : rings) {
            if (q.paused) {
                q.paused = false;
                try {
                    start(q, plan);
                } catch (ProtocolException e) {
                    LOG.error("{}: queue {} does not restart after the abandoned upgrade: {}", name, q.index,
                            e.getMessage());
                }
            }
        }
    }

    /** Whether the rings are packed (VIRTIO_F_RING_PACKED negotiated). */
    private boolean packed() {
        return VirtioFeatures.has(features, VirtioFeatures.RING_PACKED);
    }

    /** The first started ring, or null if none is. */
    QueueConfig firstStarted() {
        List<QueueConfig> started = started();
        return started.isEmpty() ? null : started.get(0);
    }

    /** The live rings, for a memory update. */
    List<Ring> running() {
        return started().stream().map(q -> q.ring).toList();
    }

    /** The started rings' configurations. */
    List<QueueConfig> started() {
        List<QueueConfig> live = new ArrayList<>();
        for (QueueConfig q : rings) {
            if (q.started()) {
                live.add(q);
            }
        }
        return live;
    }

    void setNum(ByteBuffer p) throws ProtocolException {
        QueueConfig q = stoppedRing(FrontendRequest.SET_VRING_NUM, VringStateLayout.index(p));
        int num = VringStateLayout.num(p);
        int max = Math.min(MAX_RING_SIZE, runtime.device().maxQueueSize());
        if (num <= 0 || num > max || Integer.bitCount(num) != 1) {
            throw ProtocolException.failed("SET_VRING_NUM: queue " + q.index + " size "
                    + Integer.toUnsignedString(num) + " is not a power of two between 1 and " + max);
        }
        q.num = num;
    }

    /**
     * SET_VRING_ADDR. On a started ring only VHOST_VRING_F_LOG and log_guest_addr may change: QEMU turns
     * used-ring logging on and off that way while the rings run (spec "Migration").
     */
    void setAddr(ByteBuffer p, WorkerPlan plan) throws ProtocolException {
        QueueConfig q = ring(FrontendRequest.SET_VRING_ADDR, VringAddrLayout.index(p));
        boolean logUsed = (VringAddrLayout.flags(p) & VringAddrLayout.F_LOG) != 0;
        long logAddress = logUsed ? VringAddrLayout.log(p) : 0;
        if (q.started()) {
            if (VringAddrLayout.desc(p) != q.descUser || VringAddrLayout.used(p) != q.usedUser
                    || VringAddrLayout.avail(p) != q.availUser) {
                // spec: ring parameters may only change while the ring is stopped
                throw ProtocolException.failed("SET_VRING_ADDR: queue " + q.index + " is started and the request "
                        + "moves its rings; stop it with GET_VRING_BASE first");
            }
            q.logUsed = logUsed;
            q.logGuestAddress = logAddress;
            logging.ringChanged(q, plan);
            return;
        }
        q.descUser = VringAddrLayout.desc(p);
        q.usedUser = VringAddrLayout.used(p);
        q.availUser = VringAddrLayout.avail(p);
        q.logUsed = logUsed;
        q.logGuestAddress = logAddress;
        q.addrSet = true;
    }

    void setBase(ByteBuffer p) throws ProtocolException {
        QueueConfig q = stoppedRing(FrontendRequest.SET_VRING_BASE, VringStateLayout.index(p));
        int base = VringStateLayout.num(p);
        if (packed()) {
            // packed: avail and used positions with their wrap counters, 16 bits each (PackedQueue checks them)
            q.base = base;
            return;
        }
        if (base < 0 || base > 0xffff) {
            throw ProtocolException.failed("SET_VRING_BASE: queue " + q.index + " base "
                    + Integer.toUnsignedString(base) + " exceeds the split ring's 16-bit index");
        }
        q.base = base;
    }

    /**
     * GET_VRING_BASE: stops the ring if started; the reply (where it stopped) is set on {@code plan}.
     * {@code lastStopped} runs after the stop if no ring is left started.
     */
    void getBase(ByteBuffer p, WorkerPlan plan, Runnable lastStopped) throws ProtocolException {
        QueueConfig q = ring(FrontendRequest.GET_VRING_BASE, VringStateLayout.index(p));
        if (q.started()) {
            RingStops.stop(List.of(q), plan, false);
            plan.then(() -> {
                if (firstStarted() == null) {
                    lastStopped.run();
                }
            });
        }
        plan.reply(() -> VringStateLayout.of(q.index, q.base));
    }

    void setKick(Message m, WorkerPlan plan) throws ProtocolException {
        long v = U64Layout.get(m.payload());
        QueueConfig q = ring(FrontendRequest.SET_VRING_KICK, (int) (v & U64Layout.VRING_INDEX_MASK));
        if ((v & U64Layout.VRING_NOFD_MASK) != 0) {
            throw ProtocolException.failed("SET_VRING_KICK: queue " + q.index
                    + " without a kick fd (polling mode) is not supported");
        }
        int fd = m.takeFd(0);
        int old = q.kickFd;
        q.kickFd = fd;
        if (!q.started()) {
            LinuxSys.closeQuietly(old);
            start(q, plan);
            return;
        }
        // a new kick fd for a running ring (PR rust-vmm/vhost #227: must not stop or disable it)
        Ring ring = q.ring;
        plan.onWorker(ring.worker, "SET_VRING_KICK: kick fd switch of queue " + q.index, () -> {
            try {
                ring.replaceKick(fd);
            } catch (NativeException e) {
                throw new IllegalStateException("the new kick fd cannot be watched (" + e.getMessage()
                        + "); the ring keeps its old one", e);
            }
        }, failed -> {
            // close whichever fd the ring does not use: the old one, or the refused new one
            if (failed == null) {
                LinuxSys.closeQuietly(old);
            } else {
                LinuxSys.closeQuietly(fd);
                q.kickFd = old;
            }
        });
    }

    void setCall(Message m, WorkerPlan plan) throws ProtocolException {
        long v = U64Layout.get(m.payload());
        QueueConfig q = ring(FrontendRequest.SET_VRING_CALL, (int) (v & U64Layout.VRING_INDEX_MASK));
        int old = q.callFd;
        q.callFd = (v & U64Layout.VRING_NOFD_MASK) != 0 ? -1 : m.takeFd(0);
        switchNotifier(q, old, "call", () -> notifier(q), HostQueue::setNotifier, plan);
    }

    void setErr(Message m, WorkerPlan plan) throws ProtocolException {
        long v = U64Layout.get(m.payload());
        QueueConfig q = ring(FrontendRequest.SET_VRING_ERR, (int) (v & U64Layout.VRING_INDEX_MASK));
        int old = q.errFd;
        q.errFd = (v & U64Layout.VRING_NOFD_MASK) != 0 ? -1 : m.takeFd(0);
        switchNotifier(q, old, "error", () -> errorNotifier(q), HostQueue::setErrorNotifier, plan);
    }

    /**
     * The call or error fd of {@code q} was replaced: a started ring swaps its notifier on its worker, so
     * the {@code old} fd is never written after we close it (its number could be reused); a stopped
     * ring just closes it.
     */
    private void switchNotifier(QueueConfig q, int old, String what, Supplier<CallNotifier> notifier,
            BiConsumer<HostQueue, CallNotifier> install, WorkerPlan plan) {
        if (!q.started()) {
            LinuxSys.closeQuietly(old);
            return;
        }
        Ring ring = q.ring;
        CallNotifier n = notifier.get();
        plan.onWorker(ring.worker, what + " fd switch of queue " + q.index, () -> install.accept(ring.queue, n),
                failed -> closeIfSwitched(failed, old));
    }

    private static void closeIfSwitched(Throwable failed, int old) {
        if (failed == null) {
            LinuxSys.closeQuietly(old);
        }
    }

    void setEnable(ByteBuffer p, WorkerPlan plan) throws ProtocolException {
        QueueConfig q = ring(FrontendRequest.SET_VRING_ENABLE, VringStateLayout.index(p));
        int on = VringStateLayout.num(p);
        if (on != 0 && on != 1) {
            throw ProtocolException.failed("SET_VRING_ENABLE: queue " + q.index + " state " + on + " is not 0 or 1");
        }
        setEnabled(q, on == 1, plan);
    }

    /**
     * Enables every ring: spec "If VHOST_USER_F_PROTOCOL_FEATURES has not been negotiated, the ring
     * starts directly in the enabled state."
     */
    void enableAll(WorkerPlan plan) {
        for (QueueConfig q : rings) {
            setEnabled(q, true, plan);
        }
    }

    /** Stops every started ring, then closes every ring's fds and forgets its configuration. */
    void stopAll(WorkerPlan plan) {
        RingStops.stop(started(), plan, false);
        for (QueueConfig q : rings) {
            plan.then(q::clear);
        }
    }

    private void setEnabled(QueueConfig q, boolean on, WorkerPlan plan) {
        q.enabled = on;
        if (q.started()) {
            Ring ring = q.ring;
            plan.onWorker(ring.worker, (on ? "enable" : "disable") + " of queue " + q.index,
                    on ? ring::handOver : ring::takeBack);
        }
    }

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

    /** Starts a ring whose kick fd just arrived: build the live queue and watch the kick on its worker. */
    private void start(QueueConfig q, WorkerPlan plan) throws ProtocolException {
        String what = "SET_VRING_KICK: queue " + q.index + " cannot start: ";
        GuestMemoryMap mem = memory.memory();
        if (mem == null) {
            throw ProtocolException.failed(what + "no memory table (SET_MEM_TABLE) yet");
        }
        if (q.num == 0 || !q.addrSet) {
            throw ProtocolException.failed(what + (q.num == 0 ? "no SET_VRING_NUM" : "no SET_VRING_ADDR") + " yet");
        }
        boolean packed = packed();
        long desc = translate(mem, q, "descriptor table", q.descUser, 16L * q.num);
        // packed: the avail and used addresses name the driver and device event suppression areas
        long avail = translate(mem, q, packed ? "driver area" : "avail ring", q.availUser, packed ? 4 : 6L + 2L * q.num);
        long used = translate(mem, q, packed ? "device area" : "used ring", q.usedUser, packed ? 4 : 6L + 8L * q.num);
        InflightRing record = inflight == null ? null : inflight.ring(q.index, q.num, features);
        if (packed && record != null) {
            // a device asking for inflight tracking is never offered RING_PACKED (FeatureNegotiation)
            throw ProtocolException.failed(what + "inflight tracking (SET_INFLIGHT_FD) is for split rings only, "
                    + "and this ring is packed");
        }
        HostQueue queue;
        try {
            if (packed) {
                queue = new PackedQueue(q.index, q.num, desc, avail, used, features, mem, q.base, notifier(q));
            } else {
                SplitQueue split = new SplitQueue(q.index, q.num, desc, avail, used, features, mem, q.base, notifier(q));
                if (record != null) {
                    trackInflight(q, split, record);
                }
                queue = split;
            }
            if (mem.mayFault()) {
                LinuxSys.raisePendingFault(); // the queue read its ring: a fault surfaces here, not later on the loop
            }
        } catch (IllegalArgumentException e) {
            throw ProtocolException.failed(what + e.getMessage(), e);
        } catch (InternalError e) {
            throw ProtocolException.failed(what + "reading its ring faulted (the front-end's memory file shrank "
                    + "or vanished)", e);
        }
        boolean inOrder = VirtioFeatures.has(features, VirtioFeatures.IN_ORDER);
        if (packed || inOrder) {
            // the queue's own base: it differs from q.base when the front-end's was stale (PackedRingScan)
            LOG.info("{}: queue {} starts as a {} ring of {}{} at vring base 0x{}", name, q.index,
                    packed ? "packed" : "split", q.num, inOrder ? " used in order (IN_ORDER)" : "",
                    Integer.toHexString(queue.vringBase()));
        }
        // spec: the back-end signals the error eventfd when the ring hits an error (a hostile descriptor)
        queue.setErrorNotifier(errorNotifier(q));
        Worker worker = runtime.workerForQueue(q.index);
        Ring ring = new Ring(q.index, queue, worker, runtime, q.kickFd, tap);
        boolean enabled = q.enabled;
        RingLog log = logging.ringLog(q);
        plan.onWorker(worker, "start of queue " + q.index, () -> {
            queue.setLog(log);
            q.startedNanos = System.nanoTime();
            try {
                ring.watchKick();
            } catch (NativeException e) {
                throw new IllegalStateException("kick fd " + e.getMessage(), e);
            }
            if (enabled) {
                ring.handOver();
            }
        }, failed -> {
            if (failed == null) {
                q.ring = ring;
            }
        });
    }

    /** Lines up the chains in flight before a restart; the ring resumes after them. */
    private void trackInflight(QueueConfig q, SplitQueue queue, InflightRing record) {
        int inUse = queue.trackInflight(record);
        if (inUse > 0) {
            LOG.info("{}: queue {}: {} requests were in flight, handing them to the device again first "
                    + "(next avail {} instead of the base {})", name, q.index, inUse, queue.nextAvail(), q.base);
        }
    }

    private static long translate(GuestMemoryMap mem, QueueConfig q, String what, long userAddress, long len)
            throws ProtocolException {
        long gpa = mem.userToGuest(userAddress, len);
        if (gpa == -1) {
            throw ProtocolException.failed(String.format("SET_VRING_KICK: queue %d cannot start: %s at user "
                    + "address 0x%x (%d bytes) is not inside one memory region", q.index, what, userAddress, len));
        }
        return gpa;
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
}
