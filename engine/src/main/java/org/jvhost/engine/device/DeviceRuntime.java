package org.jvhost.engine.device;

import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import org.jvhost.engine.event.EventHandler;
import org.jvhost.engine.event.QueueStats;
import org.jvhost.engine.event.Worker;
import org.jvhost.engine.event.WorkerPool;
import org.jvhost.engine.instrument.FeatureNames;
import org.jvhost.engine.instrument.Instrument;
import org.jvhost.engine.memory.MemoryBudget;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.spi.Virtqueue;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One device as the event loop sees it: which worker serves each queue group, and the device's error
 * state. Every queue callback goes through here, inside {@code catch (Throwable)}: an exception, or the
 * {@link InternalError} HotSpot raises for a SIGBUS on truncated guest memory (java-stack §7), marks
 * the device failed. A failed device gets no more callbacks (kicks and fd readiness are drained and
 * dropped) until the front-end resets it; other devices are not affected.
 *
 * <p>HotSpot raises that InternalError some time after the faulting access, possibly after the guard
 * returned and inside another device's callback. So while the device's memory may fault (a region's
 * file could not be sealed against shrinking), every guard ends with {@link #raisePendingFault()}: the
 * fault is raised inside the guard of the code that caused it, and blamed on the right device.
 */
public final class DeviceRuntime {
    private static final Logger LOG = LoggerFactory.getLogger(DeviceRuntime.class);
    /**
     * How long a thread outside the loops (adding an fd watch, removing a device) waits for a worker
     * or control loop before giving up. The control loops themselves never wait for a worker.
     */
    public static final long WORKER_TIMEOUT_MS = 5000;

    private final String name;
    private final int serial;
    private final WorkerPool pool;
    private final MemoryBudget memoryBudget;
    private final Instrument instrument;
    private volatile VhostUserDevice device;
    private volatile boolean failed;
    /** The guest memory has a region whose file can shrink (set by the session before queues use it). */
    private volatile boolean memoryMayFault;
    /** One per queue, sized when the device is attached; counts outlive connections. */
    private QueueStats[] queueStats = new QueueStats[0];
    /** Errors outside any queue (a device fd watch threw); several workers may add, so atomic. */
    private final AtomicLong deviceErrors = new AtomicLong();
    /** Features the connected front-end acknowledged, 0 when none is (for the control API). */
    private volatile long negotiatedFeatures;
    /** Sends a config-change notice to the connected front-end; set while one gave a back-end channel. */
    private final java.util.concurrent.atomic.AtomicReference<java.util.function.BooleanSupplier> configNotice =
            new java.util.concurrent.atomic.AtomicReference<>();
    /** A config-change notice no front-end has taken yet ({@link #notifyConfigChanged}). */
    private volatile boolean noticePending;

    /** A runtime whose connections map guest memory within {@link MemoryBudget#defaults()}. */
    public DeviceRuntime(String name, int serial, WorkerPool pool) {
        this(name, serial, pool, MemoryBudget.defaults());
    }

    /** @param memoryBudget the host's guest-memory budget, from which each connection opens an account */
    public DeviceRuntime(String name, int serial, WorkerPool pool, MemoryBudget memoryBudget) {
        this.name = name;
        this.serial = serial;
        this.pool = pool;
        this.memoryBudget = memoryBudget;
        this.instrument = new Instrument(name);
    }

    /** The device's protocol trace, strict-mode checks and injected faults (all off until configured). */
    public Instrument instrument() {
        return instrument;
    }

    /** The host's guest-memory budget (shared by all devices). */
    public MemoryBudget memoryBudget() {
        return memoryBudget;
    }

    /**
     * Binds the device created with this runtime's context.
     *
     * @throws IllegalArgumentException if the device offers a feature bit the host does not implement
     *                                  ({@link #refusedFeatures})
     */
    public void attach(VhostUserDevice device) {
        if (this.device != null) {
            throw new IllegalStateException(name + ": a device is already attached to this context");
        }
        String refused = refusedFeatures(device);
        if (refused != null) {
            throw new IllegalArgumentException(name + ": " + refused);
        }
        QueueStats[] stats = new QueueStats[device.maxQueues()];
        for (int i = 0; i < stats.length; i++) {
            stats[i] = new QueueStats();
        }
        this.queueStats = stats;
        this.device = device;
    }

    /**
     * What is wrong with the virtio features {@code device} offers, or null if nothing: a transport bit
     * (24-49) outside {@link VirtioFeatures#DEVICE_MAY_OFFER} would let a driver negotiate something the
     * host does not do (RING_PACKED made a guest hang with a misleading SET_VRING_BASE error).
     */
    public static String refusedFeatures(VhostUserDevice device) {
        long refused = device.features() & ~VirtioFeatures.DEVICE_MAY_OFFER;
        if (refused == 0) {
            return null;
        }
        StringBuilder bits = new StringBuilder();
        for (String n : FeatureNames.virtio(refused, -1)) {
            bits.append(bits.length() == 0 ? "" : ", ").append(n);
        }
        return String.format("the device offers virtio feature bits the host does not implement: %s (mask 0x%x); "
                + "a device offers device-specific bits (0-23, 50-63) and at most the transport bits 0x%x",
                bits, refused, VirtioFeatures.DEVICE_MAY_OFFER & ~VirtioFeatures.DEVICE_SPECIFIC);
    }

    /** The counters of queue {@code queueIndex} (in {@code [0, queueCount())}). */
    public QueueStats queueStats(int queueIndex) {
        return queueStats[queueIndex];
    }

    /** How many queues are counted: the attached device's {@link VhostUserDevice#maxQueues()}. */
    public int queueCount() {
        return queueStats.length;
    }

    /** Errors of the device outside any queue: a throwing fd-watch callback. */
    public long deviceErrors() {
        return deviceErrors.get();
    }

    /** The features the front-end acknowledged (SET_FEATURES), or 0 without a negotiated connection. */
    public long negotiatedFeatures() {
        return negotiatedFeatures;
    }

    /** Records what SET_FEATURES acknowledged; 0 when the connection resets or ends. Control thread. */
    public void setNegotiatedFeatures(long features) {
        this.negotiatedFeatures = features;
    }

    public String name() {
        return name;
    }

    /**
     * Tells the connected front-end that the config space changed (the device's
     * {@link org.jvhost.spi.DeviceContext#notifyConfigChanged()}); any thread. False if no front-end
     * took a back-end channel: the notice then goes to the next one that does (a resize while QEMU
     * reconnects, before its SET_BACKEND_REQ_FD, would otherwise never reach the guest).
     */
    public boolean notifyConfigChanged() {
        noticePending = true; // before the look-up: a channel installed meanwhile sends it (twice at worst)
        java.util.function.BooleanSupplier notice = configNotice.get();
        if (notice != null && notice.getAsBoolean()) {
            noticePending = false;
            return true;
        }
        return false;
    }

    /** Installs how config changes reach the connection's front-end; sends a notice nobody took. Control thread. */
    public void setConfigNotice(java.util.function.BooleanSupplier notice) {
        configNotice.set(notice);
        if (noticePending && notice.getAsBoolean()) {
            noticePending = false;
        }
    }

    /** Removes {@code notice} if it is still the one installed (a newer connection's stays). */
    public void clearConfigNotice(java.util.function.BooleanSupplier notice) {
        configNotice.compareAndSet(notice, null);
    }

    public VhostUserDevice device() {
        return device;
    }

    public boolean isFailed() {
        return failed;
    }

    /** Forgets the error state (after the device was reset). */
    public void clearFailure() {
        failed = false;
    }

    /**
     * Records whether the guest memory the queues are about to use may fault
     * ({@link org.jvhost.engine.memory.GuestMemoryMap#mayFault()}). Control thread, before the queues
     * switch to that memory.
     */
    public void setMemoryMayFault(boolean mayFault) {
        this.memoryMayFault = mayFault;
    }

    /**
     * Raises here a guest-memory fault still pending from this thread's accesses, if the memory may fault
     * at all ({@link LinuxSys#raisePendingFault()}); free otherwise. Guards call it last inside their
     * {@code try}. Worker only.
     */
    public void raisePendingFault() {
        if (memoryMayFault) {
            LinuxSys.raisePendingFault();
        }
    }

    /** The worker serving queue {@code queueIndex}. */
    public Worker workerForQueue(int queueIndex) {
        return pool.workerFor(serial, device.queueGroup(queueIndex));
    }

    /**
     * Hands a live queue to the device. Worker only. The caller then delivers a {@link #kick} for
     * buffers made available before (and puts the queue on its worker's ready list if the device
     * leaves work, as after any kick).
     */
    public void startQueue(int queueIndex, Virtqueue queue) {
        if (failed) {
            return;
        }
        try {
            queueStats[queueIndex].setActive(true);
            device.startQueue(queueIndex, queue);
            raisePendingFault();
        } catch (Throwable t) {
            fail("startQueue", queueIndex, t);
        }
    }

    /** A kick for a queue the device holds. Worker only; allocation-free unless the device fails. */
    public void kick(int queueIndex) {
        if (failed) {
            return;
        }
        try {
            queueStats[queueIndex].kicked();
            device.handleKick(queueIndex);
            raisePendingFault();
        } catch (Throwable t) {
            fail("handleKick", queueIndex, t);
        }
    }

    /**
     * Takes a queue back from the device: for a hot upgrade's handover ({@link VhostUserDevice#pauseQueue})
     * if {@code pause}. Worker only.
     */
    public void stopQueue(int queueIndex, boolean pause) {
        queueStats[queueIndex].setActive(false);
        try {
            if (pause) {
                device.pauseQueue(queueIndex);
            } else {
                device.stopQueue(queueIndex);
            }
            raisePendingFault();
        } catch (Throwable t) {
            fail(pause ? "pauseQueue" : "stopQueue", queueIndex, t);
        }
    }

    /**
     * {@link VhostUserDevice#isTransmitQueue}: whether the host discards what the driver sends on this
     * queue while its ring is disabled. A device whose answer throws is taken to have said no (its rings
     * then keep their buffers while disabled, as before the method existed) and the cause is logged.
     */
    public boolean isTransmitQueue(int queueIndex) {
        try {
            return device.isTransmitQueue(queueIndex);
        } catch (Throwable t) {
            LOG.warn("{}: queue {}: isTransmitQueue failed, treating it as no transmit queue: {}", name,
                    queueIndex, t.toString(), t);
            return false;
        }
    }

    /** Marks the device failed because {@code callback} on {@code queueIndex} threw {@code cause}. */
    public void fail(String callback, int queueIndex, Throwable cause) {
        boolean first = !failed;
        failed = true;
        if (queueIndex >= 0 && queueIndex < queueStats.length) {
            queueStats[queueIndex].failed(); // on the queue's worker, its counters' single writer
        } else {
            deviceErrors.incrementAndGet();
        }
        if (first) {
            String what = cause instanceof InternalError
                    ? "a guest-memory fault (the front-end's memory file shrank or vanished)" : cause.toString();
            LOG.error("{}: queue {}: {} failed: {}; the device stops serving its queues until the front-end "
                    + "resets or reconnects", name, queueIndex, callback, what, cause);
        }
    }

    /** {@link DeviceContext#watchReadable} for this device. */
    public DeviceContext.FdWatch watchReadable(int fd, int queueGroup, Runnable onReadable) {
        Worker worker = pool.workerFor(serial, queueGroup);
        FdWatchImpl watch = new FdWatchImpl(worker, fd, queueGroup, onReadable);
        try {
            worker.call(watch::register, WORKER_TIMEOUT_MS);
        } catch (TimeoutException e) {
            throw new IllegalStateException(name + ": cannot watch fd " + fd + ": " + e.getMessage(), e);
        }
        if (watch.error != null) {
            throw new IllegalStateException(name + ": cannot watch fd " + fd + ": " + watch.error.getMessage(),
                    watch.error);
        }
        return watch;
    }

    private final class FdWatchImpl implements DeviceContext.FdWatch, EventHandler {
        private final Worker worker;
        private final int fd;
        private final int group;
        private final Runnable onReadable;
        private long token = -1;
        private NativeException error;

        FdWatchImpl(Worker worker, int fd, int group, Runnable onReadable) {
            this.worker = worker;
            this.fd = fd;
            this.group = group;
            this.onReadable = onReadable;
        }

        void register() {
            try {
                token = worker.watch(fd, LinuxSys.EPOLLIN, this);
            } catch (NativeException e) {
                error = e;
            }
        }

        @Override
        public void onReady(int events) {
            if (failed) {
                setEvents(0); // stop a level-triggered fd from spinning the worker
                return;
            }
            try {
                onReadable.run();
                raisePendingFault();
            } catch (Throwable t) {
                fail("fd watch (fd " + fd + ", group " + group + ")", -1, t);
                setEvents(0);
            }
        }

        @Override
        public void pause() {
            worker.execute(() -> setEvents(0));
        }

        @Override
        public void resume() {
            worker.execute(() -> setEvents(LinuxSys.EPOLLIN));
        }

        @Override
        public void close() {
            try {
                // wait, so the device may close the fd as soon as this returns
                worker.call(() -> worker.unwatch(token), WORKER_TIMEOUT_MS);
            } catch (TimeoutException e) {
                LOG.error("{}: fd watch {} not removed: {}", name, fd, e.getMessage());
            }
        }

        /** The device and fd, for the watchdog's report of a callback that hangs. */
        @Override
        public String toString() {
            return name + " fd watch (fd " + fd + ", group " + group + ")";
        }

        private void setEvents(int events) {
            try {
                worker.modify(token, events);
            } catch (NativeException e) {
                LOG.warn("{}: fd watch {}: {}", name, fd, e.getMessage());
            }
        }
    }
}
