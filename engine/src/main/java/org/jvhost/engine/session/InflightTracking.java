package org.jvhost.engine.session;

import java.nio.ByteBuffer;
import org.jvhost.engine.device.DeviceRuntime;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.InflightLayout;
import org.jvhost.engine.protocol.ProtocolException;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.jvhost.engine.transport.Message;
import org.jvhost.engine.virtq.InflightRing;
import org.jvhost.spi.HostService;

/**
 * The shared inflight region of one connection (GET_INFLIGHT_FD, SET_INFLIGHT_FD; spec "Inflight I/O
 * tracking"), for a device that asked for {@link HostService#INFLIGHT_TRACKING}. The file holds one
 * {@link InflightRing} region per queue, each {@link InflightRing#regionSize} bytes, back to back:
 * <pre>
 *  offset 0                 regionSize(q)           2 * regionSize(q)
 *  +------------------------+------------------------+-- ... --+
 *  | queue 0 (QueueRegion)  | queue 1                |         |   q = queue_size, num_queues regions
 *  +------------------------+------------------------+-- ... --+
 * </pre>
 *
 * <p>GET_INFLIGHT_FD makes it: a memfd sized for the front-end's num_queues and queue_size, sealed
 * against shrinking, formatted, mapped here, and handed to the front-end with the reply. The front-end
 * keeps it and gives it back with SET_INFLIGHT_FD on every start, also to a restarted back-end, which
 * maps it and finds there what was in flight. Only files sealed against shrinking are mapped, so the
 * front-end cannot make an access here fault (SIGBUS); the fd is closed once mapped.
 *
 * <p>Control thread; the mapping is unmapped only after every ring using it stopped (a step of the plan
 * that stops them). One mapping and no fd held between requests.
 */
final class InflightTracking {
    private static final long PAGE = LinuxSys.SMALL_PAGE_SIZE;

    private final DeviceRuntime runtime;
    private final String name;
    private long address;
    private long length;
    private int numQueues;
    private int queueSize;
    /** The memfd to send with the GET_INFLIGHT_FD reply, or -1. */
    private int replyFd = -1;

    InflightTracking(DeviceRuntime runtime) {
        this.runtime = runtime;
        this.name = runtime.name();
    }

    /** GET_INFLIGHT_FD: a new region for the queues the front-end names. The reply's fd: {@link #takeReplyFd()}. */
    ByteBuffer get(ByteBuffer p, QueueConfig running, WorkerPlan plan) throws ProtocolException {
        if (running != null) {
            throw ProtocolException.failed("GET_INFLIGHT_FD while queue " + running.index + " runs");
        }
        int nq = InflightLayout.numQueues(p);
        int qs = InflightLayout.queueSize(p);
        check(FrontendRequest.GET_INFLIGHT_FD, nq, qs);
        long size = nq * InflightRing.regionSize(qs);
        int fd;
        long mapped;
        try {
            fd = LinuxSys.memfdCreate("jvhost-inflight", LinuxSys.MFD_CLOEXEC | LinuxSys.MFD_ALLOW_SEALING);
        } catch (NativeException e) {
            throw ProtocolException.failed("GET_INFLIGHT_FD: cannot create the region: " + e.getMessage(), e);
        }
        try {
            LinuxSys.truncate(fd, size);
            LinuxSys.sealShrink(fd);
            mapped = LinuxSys.mmap(size, LinuxSys.PROT_READ | LinuxSys.PROT_WRITE, LinuxSys.MAP_SHARED, fd, 0);
        } catch (NativeException e) {
            LinuxSys.closeQuietly(fd);
            throw ProtocolException.failed("GET_INFLIGHT_FD: cannot map a " + size + "-byte region: " + e.getMessage(), e);
        }
        for (int q = 0; q < nq; q++) {
            InflightRing.format(slice(mapped, q, qs), qs);
        }
        unmapAfter(plan);
        install(mapped, size, nq, qs);
        replyFd = fd;
        return InflightLayout.of(size, 0, nq, qs);
    }

    /** The memfd for the GET_INFLIGHT_FD reply, or -1; the session closes it once the reply is sent. */
    int replyFd() {
        return replyFd;
    }

    /** Closes the reply's memfd (the front-end has its own copy once the reply went). */
    void closeReplyFd() {
        LinuxSys.closeQuietly(replyFd);
        replyFd = -1;
    }

    /** SET_INFLIGHT_FD: maps the region the front-end kept, before any ring starts. */
    void set(Message m, QueueConfig running, WorkerPlan plan) throws ProtocolException {
        String r = "SET_INFLIGHT_FD";
        if (running != null) {
            throw ProtocolException.failed(r + " while queue " + running.index + " runs");
        }
        if (m.fdCount() != 1) {
            throw ProtocolException.failed(r + " carries no fd");
        }
        ByteBuffer p = m.payload();
        int nq = InflightLayout.numQueues(p);
        int qs = InflightLayout.queueSize(p);
        check(FrontendRequest.SET_INFLIGHT_FD, nq, qs);
        long size = InflightLayout.mmapSize(p);
        long offset = InflightLayout.mmapOffset(p);
        long needed = nq * InflightRing.regionSize(qs);
        if (size != needed || offset < 0 || offset % PAGE != 0 || offset > Long.MAX_VALUE - size) {
            throw ProtocolException.failed(String.format("%s: mmap_size %d at offset %d; %d queues of %d need "
                    + "exactly %d bytes at a page-aligned offset", r, size, offset, nq, qs, needed));
        }
        int fd = m.takeFd(0);
        try {
            long mapped = mapChecked(fd, offset, size);
            unmapAfter(plan);
            install(mapped, size, nq, qs);
        } finally {
            LinuxSys.closeQuietly(fd);
        }
    }

    private static long mapChecked(int fd, long offset, long size) throws ProtocolException {
        try {
            long file = LinuxSys.fileSize(fd);
            if (file < offset + size) {
                throw ProtocolException.failed(String.format("SET_INFLIGHT_FD: the file has %d bytes, the region "
                        + "needs %d at offset %d", file, size, offset));
            }
            if (!LinuxSys.sealShrink(fd)) {
                throw ProtocolException.failed("SET_INFLIGHT_FD: the file can shrink (it is not a memfd sealed "
                        + "with F_SEAL_SHRINK, as GET_INFLIGHT_FD made it), so reading it could fault");
            }
            return LinuxSys.mmap(size, LinuxSys.PROT_READ | LinuxSys.PROT_WRITE, LinuxSys.MAP_SHARED, fd, offset);
        } catch (NativeException e) {
            throw ProtocolException.failed("SET_INFLIGHT_FD: cannot map the region: " + e.getMessage(), e);
        }
    }

    private void check(FrontendRequest r, int nq, int qs) throws ProtocolException {
        int maxQueues = runtime.device().maxQueues();
        if (nq < 1 || nq > maxQueues || qs < 1 || qs > 32768 || Integer.bitCount(qs) != 1) {
            throw ProtocolException.failed(r + ": " + nq + " queues of size " + qs + " (the device has 1 to "
                    + maxQueues + " queues, sizes are powers of two up to 32768)");
        }
    }

    /**
     * The record of queue {@code index} of {@code num} descriptors, or null if there is no region (the
     * front-end did not ask) or it has no room for this queue.
     */
    InflightRing ring(int index, int num, long features) throws ProtocolException {
        if (address == 0 || index >= numQueues) {
            return null;
        }
        if (num != queueSize) {
            throw ProtocolException.failed("SET_VRING_KICK: queue " + index + " has " + num
                    + " descriptors but its inflight region was made for " + queueSize);
        }
        try {
            return new InflightRing(slice(address, index, queueSize), num, features);
        } catch (IllegalArgumentException e) {
            throw ProtocolException.failed("SET_VRING_KICK: queue " + index + ": " + e.getMessage(), e);
        }
    }

    /** Whether an inflight region is mapped (GET_INFLIGHT_FD or SET_INFLIGHT_FD). */
    boolean active() {
        return address != 0;
    }

    private static ByteBuffer slice(long address, int queue, int qs) {
        long each = InflightRing.regionSize(qs);
        return LinuxSys.buffer(address + queue * each, each);
    }

    private void install(long mapped, long size, int nq, int qs) {
        address = mapped;
        length = size;
        numQueues = nq;
        queueSize = qs;
    }

    /** Unmaps the region in a control step of {@code plan}, after the rings it stops. */
    void clear(WorkerPlan plan) {
        unmapAfter(plan);
        address = 0;
        numQueues = 0;
    }

    private void unmapAfter(WorkerPlan plan) {
        long a = address;
        long len = length;
        if (a != 0) {
            plan.then(() -> {
                try {
                    LinuxSys.munmap(a, len);
                } catch (NativeException e) {
                    throw new IllegalStateException(name + ": cannot unmap the inflight region: " + e.getMessage(), e);
                }
            });
        }
    }
}
