package org.jvhost.engine.session;

import java.nio.ByteBuffer;
import java.util.List;
import org.jvhost.engine.memory.DirtyLog;
import org.jvhost.engine.memory.GuestMemoryMap;
import org.jvhost.engine.memory.MemoryMapException;
import org.jvhost.engine.protocol.LogLayout;
import org.jvhost.engine.protocol.Payloads;
import org.jvhost.engine.protocol.ProtocolException;
import org.jvhost.engine.transport.Message;
import org.jvhost.engine.virtq.RingLog;
import org.jvhost.spi.MemoryRegion;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Dirty-page logging for live migration (spec "Migration"): the log the front-end shares (SET_LOG_BASE),
 * whether it asked for logging (VHOST_F_LOG_ALL in SET_FEATURES), and the {@link RingLog} each ring
 * writes through. Rings log while both are there: QEMU sends the log first when a migration starts, but
 * LOG_ALL first when it restarts a device in the middle of one.
 *
 * <p>A change reaches the running rings as commands on their workers ({@link WorkerPlan}), which own
 * the queues: a ring flushes what it noted for the old log before it takes the new one, and an old
 * log is unmapped only after every ring has let go of it. LOG_ALL going off (the migration finished or
 * was cancelled) unmaps the log: QEMU frees it then and sends a new one for the next migration.
 * Control thread only.
 */
final class DirtyLogging {
    /** VHOST_F_LOG_ALL, a vhost feature bit in the virtio feature word: log every write to guest memory. */
    static final long LOG_ALL = 1L << 26;
    private static final Logger LOG = LoggerFactory.getLogger(DirtyLogging.class);

    private final String name;
    private DirtyLog log;
    private boolean logAll;

    /** @param name the device's name, for the log lines that say when a migration starts logging and stops */
    DirtyLogging(String name) {
        this.name = name;
    }

    /** Whether rings log now. */
    boolean active() {
        return logAll && log != null;
    }

    /** The log a ring starting now writes through (null: not logging). */
    RingLog ringLog(QueueConfig q) {
        return active() ? new RingLog(log, q.logUsed ? q.logGuestAddress : -1) : null;
    }

    /**
     * SET_LOG_BASE: maps the log and switches the {@code started} rings to it; the old log, if any (the
     * front-end resizes the log by sending a new one), is unmapped after they switched. Checks the log
     * covers {@code memory}. Returns the reply the spec requires with LOG_SHMFD: an empty payload.
     */
    ByteBuffer setBase(Message m, GuestMemoryMap memory, List<QueueConfig> started, WorkerPlan plan)
            throws ProtocolException {
        if (m.fdCount() == 0) {
            throw ProtocolException.failed("SET_LOG_BASE without a log fd (LOG_SHMFD sends it with the request)");
        }
        DirtyLog next;
        try {
            next = DirtyLog.map(m.takeFd(0), LogLayout.mmapSize(m.payload()), LogLayout.mmapOffset(m.payload()));
        } catch (MemoryMapException e) {
            throw ProtocolException.failed("SET_LOG_BASE: " + e.getMessage(), e);
        }
        long needed = pagesOf(memory);
        if (Long.compareUnsigned(needed, next.pages()) > 0) {
            next.unmap();
            throw ProtocolException.failed(String.format("SET_LOG_BASE: the log's 0x%x bytes cover %d pages, "
                    + "but guest memory reaches page %d", next.size(), next.pages(), needed));
        }
        DirtyLog old = log;
        log = next;
        LOG.info("{}: migration log set: {}{}", name, next, logAll ? "; rings log into it" : "");
        switchRings(started, plan);
        unmapAfter(old, plan);
        return Payloads.allocate(0);
    }

    /** SET_FEATURES: turns logging on or off with VHOST_F_LOG_ALL in {@code features}. */
    void setFeatures(long features, List<QueueConfig> started, WorkerPlan plan) {
        boolean on = (features & LOG_ALL) != 0;
        if (on == logAll) {
            return;
        }
        logAll = on;
        LOG.info("{}: VHOST_F_LOG_ALL {}{}", name, on ? "on" : "off",
                log == null ? " (no log yet)" : on ? ": rings log into the " + log : ": the log is released");
        switchRings(started, plan);
        if (!on) {
            unmapAfter(log, plan);
            log = null;
        }
    }

    /** SET_VRING_ADDR changed whether the started ring {@code q} logs its used ring, or where. */
    void ringChanged(QueueConfig q, WorkerPlan plan) {
        switchRings(List.of(q), plan);
    }

    /** Forgets the log (reset, disconnect); the caller stopped the rings earlier in {@code plan}. */
    void clear(WorkerPlan plan) {
        logAll = false;
        unmapAfter(log, plan);
        log = null;
    }

    private void switchRings(List<QueueConfig> started, WorkerPlan plan) {
        for (QueueConfig q : started) {
            Ring ring = q.ring;
            RingLog next = ringLog(q);
            plan.onWorker(ring.worker, (next == null ? "dirty logging off" : "dirty logging on") + " for queue "
                    + q.index, () -> ring.queue.setLog(next));
        }
    }

    private static void unmapAfter(DirtyLog old, WorkerPlan plan) {
        if (old != null) {
            plan.then(old::unmap);
        }
    }

    /** How many log pages guest memory needs: one past its highest page. */
    private static long pagesOf(GuestMemoryMap memory) {
        long end = 0;
        if (memory != null) {
            for (MemoryRegion r : memory.regions()) {
                end = Math.max(end, r.guestAddress() + r.size());
            }
        }
        return (end + (1L << DirtyLog.PAGE_SHIFT) - 1) >>> DirtyLog.PAGE_SHIFT;
    }
}
