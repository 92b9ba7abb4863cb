package org.jvhost.engine.server;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.jvhost.engine.device.DeviceRuntime;
import org.jvhost.engine.event.WorkerPool;
import org.jvhost.engine.memory.MemoryBudget;
import org.jvhost.engine.memory.RegionSpec;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.MemoryTableLayout;
import org.jvhost.engine.protocol.MessageHeader;
import org.jvhost.engine.protocol.U64Layout;
import org.jvhost.engine.protocol.VringAddrLayout;
import org.jvhost.engine.protocol.VringStateLayout;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.jvhost.engine.transport.Message;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.spi.Virtqueue;
import org.newsclub.net.unix.AFUNIXSocketChannel;
import org.newsclub.net.unix.FileDescriptorCast;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A hot upgrade's dress rehearsal, run by the successor at the end of the first phase, while the previous
 * process still serves: one scratch connection, with a do-nothing device on scratch guest memory, is taken
 * over exactly as a real one is ({@link Connection#adopt}, then {@link Connection#start} with the ring
 * positions), runs, and ends.
 *
 * <p>Why: in a JVM a second old, the first ring start after the pause loaded ~95 classes (the ring
 * classes, and a lambda class with its LambdaForms for each of ~30 lambdas first captured on that path)
 * and ran them interpreted: 150-200 ms of the one-device gap (BENCHMARKS.md, "Hot upgrade"). Rehearsed, the
 * real start after the pause finds that code loaded, linked and profiled.
 *
 * <p>The scratch guest memory is one 64 KiB memfd with two split rings of {@link #RING} entries, ring i
 * at {@code i * 0x4000}, and a 64-byte buffer to read and one to write:
 * <pre>
 *  offset  0x0          0x1000                0x3000                0x8000 (BUFFER)    0x8040    0x10000
 *          | desc 16*N  | avail 6+2N (+gap)   | used 6+8N (+gap)    | readable 64 B | writable 64 B |
 *  desc[0] = {BUFFER, 64, NEXT, next 1}; desc[1] = {BUFFER + 64, 64, WRITE}; avail idx 1, ring[0] = 0
 * </pre>
 * Each ring thus starts with one chain waiting, which the device pops, copies through (read, write,
 * chain to chain, {@link #COPY_ROUNDS} times: what most devices' data paths call, on the JDK's bulk-copy
 * code too) and returns. Every fd here (the memfd, the socket pair, two eventfds per ring) belongs to the scratch
 * session once its request is replayed, and is closed with it; a failure is logged and costs only the
 * warm-up.
 */
final class Rehearsal {
    private static final Logger LOG = LoggerFactory.getLogger(Rehearsal.class);
    static final String NAME = "hot-upgrade rehearsal";
    private static final int RING = 256;
    private static final int RINGS = 2;
    private static final long RING_STRIDE = 0x4000;
    private static final long MEMORY = 0x10000;
    private static final long AVAIL = 0x1000;
    private static final long USED = 0x3000;
    private static final long BUFFER = 0x8000;
    private static final int COPY_ROUNDS = 2000;
    /** Any user address: the scratch session only translates through it. */
    private static final long USER_BASE = 0x7f00_0000_0000L;
    private static final long FEATURES = VirtioFeatures.VERSION_1 | VirtioFeatures.RING_EVENT_IDX
            | VirtioFeatures.RING_INDIRECT_DESC | VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES;

    /** How long the compiler may stay busy after the rehearsal before the pause is asked for anyway. */
    static final long QUIET_MAX_MS = 500;
    /** The compiler counts as quiet when its total time did not move for this long. */
    private static final long QUIET_MS = 20;

    private Rehearsal() {
    }

    /**
     * Waits (at most {@code maxMs}) until the JIT compiler stopped working, i.e. its total compilation
     * time did not move for {@link #QUIET_MS}. Why: the rehearsal queues the ring code for compilation,
     * and compiler threads still busy when the previous process pauses compete with both processes for
     * the CPUs during the gap. Returns the time waited in ms; 0 if the JVM does not report the time.
     */
    static long awaitCompilerQuiet(long maxMs) {
        java.lang.management.CompilationMXBean jit = java.lang.management.ManagementFactory.getCompilationMXBean();
        if (jit == null || !jit.isCompilationTimeMonitoringSupported()) {
            return 0;
        }
        long t0 = System.nanoTime();
        long deadline = t0 + maxMs * 1_000_000L;
        long before = jit.getTotalCompilationTime();
        while (System.nanoTime() - deadline < 0) {
            try {
                Thread.sleep(QUIET_MS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
            long now = jit.getTotalCompilationTime();
            if (now == before) {
                break;
            }
            before = now;
        }
        return (System.nanoTime() - t0) / 1_000_000L;
    }

    /**
     * Collects the garbage of the first phase (taking over 1,000 devices fills a young generation of
     * ~100 MB), so that the next collection does not fall into the pause: one did, for 124 ms of the
     * 1,000-device gap (the JVM of a jvhost pinned to one CPU collects with the serial collector, which
     * stops every thread). Returns the time it took in ms.
     */
    static long collectGarbage() {
        long t0 = System.nanoTime();
        System.gc();
        return (System.nanoTime() - t0) / 1_000_000L;
    }

    /** The JIT compiler's total time so far in ms, or -1 if the JVM does not report it. */
    static long compilerMs() {
        java.lang.management.CompilationMXBean jit = java.lang.management.ManagementFactory.getCompilationMXBean();
        return jit == null || !jit.isCompilationTimeMonitoringSupported() ? -1 : jit.getTotalCompilationTime();
    }

    /**
     * Takes a scratch connection over on {@code loop} and ends it again, waiting at most {@code timeoutMs}
     * for each step. Not on a loop thread.
     *
     * @return the chains the scratch device served (one per ring), or -1 if the rehearsal failed (logged)
     */
    static int run(ControlLoop loop, WorkerPool pool, MemoryBudget budget, long timeoutMs) {
        long t0 = System.nanoTime();
        DeviceRuntime runtime = new DeviceRuntime(NAME, -1, pool, budget);
        IdleDevice device = new IdleDevice();
        runtime.attach(device);
        int[] pair;
        try {
            pair = LinuxSys.socketPair();
        } catch (NativeException e) {
            LOG.warn("no {}: {}", NAME, e.getMessage());
            return -1;
        }
        List<Message> setup = new ArrayList<>();
        List<Message> rings = new ArrayList<>();
        Connection[] c = {null};
        CompletableFuture<Void> running = new CompletableFuture<>();
        try {
            requests(setup, rings);
            loop.call(() -> {
                try {
                    AFUNIXSocketChannel ch = FileDescriptorCast.unsafeUsing(pair[0]).as(AFUNIXSocketChannel.class);
                    c[0] = Connection.adopt(runtime, loop, "a scratch socket", ch, pair[0], setup, x -> { });
                    c[0].start(new ArrayList<>(rings), running);
                    rings.clear();
                } catch (IOException e) {
                    throw new IllegalStateException(e.getMessage(), e);
                }
            }, timeoutMs);
            running.get(timeoutMs, TimeUnit.MILLISECONDS);
            loop.execute(c[0]::end);
            c[0].released().get(timeoutMs, TimeUnit.MILLISECONDS);
            LOG.info("{}: a scratch connection taken over, {} chain(s) served and ended in {} ms (the rings' code "
                    + "is warm for the pause)", NAME, device.served, (System.nanoTime() - t0) / 1_000_000);
            return device.served;
        } catch (Exception e) {
            LOG.warn("{} failed (the rings start on cold code after the pause): {}", NAME, e.toString());
            if (c[0] != null) {
                loop.execute(c[0]::end);
            } else {
                LinuxSys.closeQuietly(pair[0]);
            }
            return -1;
        } finally {
            setup.forEach(Message::closeFds);
            rings.forEach(Message::closeFds);
            LinuxSys.closeQuietly(pair[1]);
        }
    }

    /** The scratch connection as a hot upgrade's image: {@code setup} while rings run, {@code rings} after. */
    private static void requests(List<Message> setup, List<Message> rings) throws IOException {
        add(setup, FrontendRequest.SET_FEATURES, U64Layout.of(FEATURES));
        int mem = LinuxSys.memfdCreate("jvhost-rehearsal", LinuxSys.MFD_CLOEXEC | LinuxSys.MFD_ALLOW_SEALING);
        try {
            LinuxSys.truncate(mem, MEMORY);
            offerOneChain(mem);
        } catch (IOException e) {
            LinuxSys.closeQuietly(mem);
            throw e;
        }
        add(setup, FrontendRequest.SET_MEM_TABLE, MemoryTableLayout.of(List.of(new RegionSpec(0, MEMORY, USER_BASE, 0))),
                mem);
        for (int i = 0; i < RINGS; i++) {
            long base = USER_BASE + i * RING_STRIDE;
            add(setup, FrontendRequest.SET_VRING_NUM, VringStateLayout.of(i, RING));
            add(setup, FrontendRequest.SET_VRING_ADDR, VringAddrLayout.of(i, 0, base, base + USED, base + AVAIL, 0));
            add(setup, FrontendRequest.SET_VRING_CALL, U64Layout.of(i), eventfd());
            add(setup, FrontendRequest.SET_VRING_ENABLE, VringStateLayout.of(i, 1));
            add(rings, FrontendRequest.SET_VRING_BASE, VringStateLayout.of(i, 0));
            add(rings, FrontendRequest.SET_VRING_KICK, U64Layout.of(i), eventfd());
        }
    }

    /** Writes each ring's desc[0] and avail ring (virtio 1.2 section 2.7, little-endian) into the memory file. */
    private static void offerOneChain(int mem) throws IOException {
        try (FileChannel f = FileChannel.open(Path.of("/proc/self/fd/" + mem), StandardOpenOption.WRITE)) {
            for (int i = 0; i < RINGS; i++) {
                long ring = i * RING_STRIDE;
                // struct virtq_desc { le64 addr; le32 len; le16 flags (1: NEXT, 2: WRITE); le16 next; }
                f.write(ByteBuffer.allocate(32).order(ByteOrder.LITTLE_ENDIAN)
                        .putLong(0, BUFFER).putInt(8, 64).putShort(12, (short) 1).putShort(14, (short) 1)
                        .putLong(16, BUFFER + 64).putInt(24, 64).putShort(28, (short) 2), ring);
                // struct virtq_avail { le16 flags; le16 idx = 1; le16 ring[0] = 0; ... }
                f.write(ByteBuffer.allocate(6).order(ByteOrder.LITTLE_ENDIAN).putShort(2, (short) 1), ring + AVAIL);
            }
        }
    }

    private static int eventfd() throws NativeException {
        return LinuxSys.eventfd(LinuxSys.EFD_CLOEXEC | LinuxSys.EFD_NONBLOCK);
    }

    private static void add(List<Message> to, FrontendRequest r, ByteBuffer payload, int... fds) {
        int size = payload.remaining();
        to.add(Message.replayed(new MessageHeader(r.code(), MessageHeader.VERSION, size), payload, fds));
    }

    /** A device with no features of its own that returns every chain it is given unread. */
    private static final class IdleDevice implements VhostUserDevice {
        private final Virtqueue[] queues = new Virtqueue[RINGS];
        private final DescriptorChain[] chains = new DescriptorChain[RINGS];
        private final byte[] bytes = new byte[64];
        /** Chains returned, over all queues (workers write, the rehearsal reads after the end). */
        private volatile int served;

        @Override
        public int deviceType() {
            return 0;
        }

        @Override
        public int maxQueues() {
            return RINGS;
        }

        @Override
        public long features() {
            return 0;
        }

        @Override
        public void ackFeatures(long acked) {
        }

        @Override
        public void startQueue(int queueIndex, Virtqueue queue) {
            queues[queueIndex] = queue;
            chains[queueIndex] = queue.newChain();
        }

        @Override
        public synchronized void handleKick(int queueIndex) {
            Virtqueue q = queues[queueIndex];
            DescriptorChain c = chains[queueIndex];
            while (q.pop(c)) {
                for (int i = 0; i < COPY_ROUNDS; i++) {
                    c.read(0, bytes, 0, bytes.length);
                    c.write(0, bytes, 0, bytes.length);
                    c.copyTo(0, c, 0, c.readableBytes());
                    c.readLong(0);
                }
                q.addUsed(c, c.writableBytes());
                served++;
            }
            q.publishUsed();
            q.signalUsed();
        }

        @Override
        public Virtqueue stopQueue(int queueIndex) {
            Virtqueue q = queues[queueIndex];
            queues[queueIndex] = null;
            return q;
        }

        @Override
        public void reset() {
        }
    }
}
