package org.jvhost.engine.session;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.jvhost.engine.device.DeviceRuntime;
import org.jvhost.engine.memory.GuestMemoryMap;
import org.jvhost.engine.memory.MappedRegion;
import org.jvhost.engine.memory.MemoryBudget;
import org.jvhost.engine.memory.MemoryMapException;
import org.jvhost.engine.memory.RegionSpec;
import org.jvhost.engine.protocol.MemoryTableLayout;
import org.jvhost.engine.protocol.ProtocolException;
import org.jvhost.engine.protocol.SingleMemRegionLayout;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.transport.Message;

/**
 * The guest memory of one connection: the mapped regions (SET_MEM_TABLE, ADD_MEM_REG, REM_MEM_REG)
 * and the map queues translate through. A change reaches running queues on their workers first; the
 * regions that left the table are unmapped only after every one of those workers has switched, so no
 * queue ever reads an unmapped page. Every region counts against the connection's share of the host's
 * guest-memory budget until it is unmapped. Control thread only.
 */
final class MemoryTable {
    /** GET_MAX_MEM_SLOTS: as many as QEMU's largest (KVM's 509 user memslots), for virtio-mem hot-plug. */
    static final int MAX_MEM_SLOTS = 509;

    private final DeviceRuntime runtime;
    /** This connection's share of the host's guest-memory budget; every region it maps counts here. */
    private final MemoryBudget.Account account;
    private GuestMemoryMap memory;
    private List<MappedRegion> regions = List.of();
    /**
     * How many more times than once each region was added. QEMU runs one vhost_dev per queue pair of a
     * multiqueue NIC over the same socket, and each adds the guest's RAM with ADD_MEM_REG; each later
     * removes it again with REM_MEM_REG. A region leaves only when the last of them removes it.
     */
    private final Map<MappedRegion, Integer> duplicateAdds = new HashMap<>();

    MemoryTable(DeviceRuntime runtime) {
        this.runtime = runtime;
        this.account = runtime.memoryBudget().newAccount();
    }

    /** The mapped regions, in table order (for a hot upgrade's image of the connection). */
    List<MappedRegion> regions() {
        return regions;
    }

    /** How many more times than once {@code r} was added (ADD_MEM_REG); 0 for most. */
    int duplicateAdds(MappedRegion r) {
        return duplicateAdds.getOrDefault(r, 0);
    }

    /** The current guest memory, or null before the first table. */
    GuestMemoryMap memory() {
        return memory;
    }

    /**
     * SET_MEM_TABLE: replaces every region; {@code running} rings switch in {@code plan}. A region already
     * mapped from the same file range is kept, not mapped again: QEMU resends the whole table at every
     * layout change, and mapping it twice would, for a moment, count the guest's memory twice against the
     * connection's limit.
     */
    void setTable(Message m, List<Ring> running, WorkerPlan plan) throws ProtocolException {
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
                    MappedRegion r = MappedRegion.map(specs.get(i), fd, account);
                    fresh.add(r);
                    table.add(r);
                }
            }
            install(GuestMemoryMap.of(table), table, running, plan);
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

    /** ADD_MEM_REG: adds one region, or counts one more user of an identical region. */
    void add(Message m, List<Ring> running, WorkerPlan plan) throws ProtocolException {
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
            added = MappedRegion.map(spec, m.takeFd(0), account);
            List<MappedRegion> next = new ArrayList<>(regions);
            next.add(added);
            install(GuestMemoryMap.of(next), next, running, plan);
        } catch (MemoryMapException e) {
            if (added != null) {
                added.unmap();
            }
            throw ProtocolException.failed("ADD_MEM_REG: " + e.getMessage(), e);
        }
    }

    /** REM_MEM_REG: removes a region once its last adder removes it. */
    void remove(ByteBuffer p, List<Ring> running, WorkerPlan plan) throws ProtocolException {
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
            install(GuestMemoryMap.of(next), next, running, plan);
        } catch (MemoryMapException e) {
            throw ProtocolException.failed("REM_MEM_REG: " + e.getMessage(), e);
        }
    }

    /**
     * Forgets every region; they are unmapped by a step of {@code plan}, which the caller adds after the
     * steps that stop the rings.
     */
    void clear(WorkerPlan plan) {
        List<MappedRegion> old = regions;
        regions = List.of();
        duplicateAdds.clear();
        memory = null;
        plan.then(() -> {
            old.forEach(MappedRegion::unmap);
            runtime.setMemoryMayFault(false);
        });
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
    private void install(GuestMemoryMap next, List<MappedRegion> nextRegions, List<Ring> running, WorkerPlan plan) {
        List<MappedRegion> left = new ArrayList<>(regions);
        left.removeAll(nextRegions);
        memory = next;
        regions = List.copyOf(nextRegions);
        if (next.mayFault()) {
            runtime.setMemoryMayFault(true); // before any queue reads the new memory
        }
        for (Ring ring : running) {
            // requests the device still runs on the old mapping finish first (bounded): it is unmapped below
            plan.onWorkerAsync(ring.worker, "memory update of queue " + ring.index, done -> ring.whenQuiet(
                    "memory update", () -> {
                        try {
                            ring.queue.updateMemory(next);
                        } finally {
                            done.run();
                        }
                    }), failed -> { });
        }
        plan.then(() -> {
            runtime.setMemoryMayFault(next.mayFault()); // no queue reads the old memory any more
            left.forEach(MappedRegion::unmap);
        });
    }
}
