package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.jvhost.engine.device.DeviceRuntime;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.engine.virtq.UsedRingLayout;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.spi.Virtqueue;
import org.jvhost.testkit.FakeGuestMemory;
import org.jvhost.testkit.MockSplitQueue;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Fairness of a worker thread under a ring that never empties (the Virtqueue contract's "returning with
 * work left"): a device that stops after a budget of chains is called again without a kick, and while
 * one front-end keeps its ring full, another device on the same worker still answers and the host's
 * requests to that worker (GET_VRING_BASE) complete. Run with adaptive polling off and on.
 */
@Timeout(60)
class WorkerFairnessTest {
    private static final int SIZE = 64;
    private static final long RAM = 1 << 20;
    private static final byte[] PING = "ping".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] PONG = "pong".getBytes(StandardCharsets.US_ASCII);

    @TempDir
    Path dir;
    Host host;
    private final java.util.List<Front> fronts = new java.util.ArrayList<>();

    /**
     * Serves queue 0 with the processing loop of the Virtqueue Javadoc, stopping after {@code budget}
     * chains with notifications still disabled; answers "pong" into each chain, spending
     * {@code nanosPerChain} on each (a device slower than its driver, whose ring therefore stays full).
     */
    private static final class BudgetDevice implements VhostUserDevice {
        private final int budget;
        private final long nanosPerChain;
        final CountDownLatch started = new CountDownLatch(1);
        final AtomicLong kicks = new AtomicLong();
        private Virtqueue queue;
        private DescriptorChain chain;

        BudgetDevice(int budget, long nanosPerChain) {
            this.budget = budget;
            this.nanosPerChain = nanosPerChain;
        }

        @Override public int deviceType() { return 1; }
        @Override public int maxQueues() { return 1; }
        @Override public int maxQueueSize() { return SIZE; }
        @Override public long features() { return 0; }
        @Override public void ackFeatures(long acked) { }
        @Override public void reset() { }

        @Override
        public void startQueue(int queueIndex, Virtqueue q) {
            queue = q;
            chain = q.newChain();
            started.countDown();
        }

        @Override
        public void handleKick(int queueIndex) {
            kicks.incrementAndGet();
            Virtqueue q = queue;
            int served = 0;
            do {
                q.disableNotifications();
                while (q.pop(chain)) {
                    long until = System.nanoTime() + nanosPerChain;
                    while (System.nanoTime() < until) {
                        Thread.onSpinWait();
                    }
                    q.addUsed(chain, chain.write(0, PONG, 0, PONG.length));
                    q.publishUsed(); // the driver may refill at once, as with the loopback's batches
                    if (++served == budget) {
                        q.signalUsed();
                        return; // budget spent: no enableNotifications, the host calls again
                    }
                }
                q.signalUsed();
            } while (q.enableNotifications());
        }

        @Override
        public Virtqueue stopQueue(int queueIndex) {
            Virtqueue q = queue;
            queue = null;
            return q;
        }
    }

    /** A front-end driving ring 0 of one device over memfd memory; features without EVENT_IDX. */
    private static final class Front implements AutoCloseable {
        final BudgetDevice device;
        final DeviceContext ctx;
        final ScriptedFrontend fe;
        final MockSplitQueue driver;

        Front(Host host, Path socket, BudgetDevice device) throws Exception {
            this.device = device;
            ctx = host.newContext(socket.getFileName().toString());
            host.addDevice(ctx, device, socket, Host.Mode.LISTEN);
            fe = ScriptedFrontend.connect(socket);
            fe.setOwner();
            // without EVENT_IDX the driver's kick decision is just used->flags, which the flood driver reads
            fe.setFeatures(fe.getFeatures() & ~VirtioFeatures.RING_EVENT_IDX);
            fe.setProtocolFeatures(ProtocolFeatures.REPLY_ACK);
            ScriptedFrontend.GuestRegion ram = fe.addRegion(0, RAM);
            fe.setMemTable();
            driver = MockSplitQueue.create(FakeGuestMemory.builder().region(0, ram.buffer()).build(), SIZE, 0x1000,
                    RAM - 0x1000);
            fe.setVringNum(0, SIZE);
            fe.setVringBase(0, 0);
            fe.setVringAddrGpa(0, driver.descGpa(), driver.availGpa(), driver.usedGpa());
            fe.setVringCall(0);
            fe.setVringEnable(0, true);
            fe.setVringKick(0);
            assertTrue(device.started.await(5, TimeUnit.SECONDS), "the ring started");
        }

        void ping() {
            driver.addChain(new byte[][] {PING}, new int[] {64});
        }

        /** Kicks as a driver does: only if the device did not ask it not to (after a full fence). */
        void kickIfWanted() throws Exception {
            VarHandle.fullFence();
            if ((driver.usedFlags() & UsedRingLayout.F_NO_NOTIFY) == 0) {
                fe.kick(0);
            }
        }

        @Override
        public void close() throws Exception {
            fe.close();
        }
    }

    @AfterEach
    void stop() throws Exception {
        for (Front f : fronts) {
            f.close();
        }
        if (host != null) {
            host.close();
        }
    }

    private Front front(String name, int budget, long nanosPerChain) throws Exception {
        Front f = new Front(host, dir.resolve(name + ".sock"), new BudgetDevice(budget, nanosPerChain));
        fronts.add(f);
        return f;
    }

    private static void awaitUsed(Front f, int used, long timeoutMs, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        while (f.driver.usedIdx() != used) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError(what + ": used->idx is " + f.driver.usedIdx() + ", expected " + used
                        + " within " + timeoutMs + " ms (device called " + f.device.kicks.get() + " times)");
            }
            Thread.sleep(1);
        }
    }

    @ParameterizedTest(name = "poll-us {0}")
    @ValueSource(ints = {0, 50})
    void aDeviceServingOneChainPerCallDrainsTheRingAfterOneKick(int pollMicros) throws Exception {
        host = new Host(1, pollMicros);
        Front f = front("one", 1, 0);
        int n = SIZE - 1;
        for (int i = 0; i < n; i++) {
            f.ping();
        }
        f.fe.kick(0); // one kick for all of them; the device leaves kicks off after each chain
        awaitUsed(f, n, 5000, "re-delivered without kicks");
        Thread.sleep(50);
        assertEquals(0, f.driver.usedFlags(), "drained: the device asked for kicks again");
        assertTrue(f.device.kicks.get() >= n, "one call per chain: " + f.device.kicks.get());

        f.ping(); // and the next buffer comes with a kick, as usual
        f.kickIfWanted();
        awaitUsed(f, n + 1, 5000, "the next kick");
    }

    @ParameterizedTest(name = "poll-us {0}")
    @ValueSource(ints = {0, 50})
    void aRingKeptFullDoesNotStarveAnotherDeviceOrTheHostsRequestsOnTheSameWorker(int pollMicros) throws Exception {
        host = new Host(1, pollMicros); // one worker: both devices and every command share its thread
        // The busy device takes 50 us a chain, slower than its driver refills: its ring never empties, so
        // a device without a budget would never return from handleKick.
        Front busy = front("busy", 16, 50_000);
        Front quiet = front("quiet", 16, 0);

        // The busy front-end refills its ring as fast as it can, for as long as the test runs.
        AtomicReference<Throwable> floodError = new AtomicReference<>();
        AtomicLong floodUsed = new AtomicLong();
        java.util.concurrent.atomic.AtomicBoolean flooding = new java.util.concurrent.atomic.AtomicBoolean(true);
        Thread flood = new Thread(() -> {
            try {
                int used = 0;
                while (flooding.get()) {
                    int nowUsed = busy.driver.usedIdx();
                    floodUsed.addAndGet((nowUsed - used) & 0xffff);
                    used = nowUsed;
                    int inFlight = (busy.driver.availIdx() - used) & 0xffff;
                    if (inFlight == SIZE) {
                        Thread.onSpinWait();
                        continue;
                    }
                    for (int i = inFlight; i < SIZE; i++) {
                        busy.ping();
                    }
                    busy.kickIfWanted();
                }
            } catch (Throwable t) {
                floodError.set(t);
            }
        }, "flood");
        flood.setDaemon(true);
        flood.start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (floodUsed.get() < 20L * SIZE) { // the busy ring really is served (and so kept full)
                assertTrue(System.nanoTime() < deadline, "the busy ring is served: " + floodUsed.get() + " chains");
                Thread.sleep(1);
            }

            long worstPongNanos = 0;
            for (int i = 1; i <= 20; i++) {
                long t0 = System.nanoTime();
                quiet.ping();
                quiet.kickIfWanted();
                awaitUsed(quiet, i, 2000, "pong " + i + " of the quiet device while the other floods");
                worstPongNanos = Math.max(worstPongNanos, System.nanoTime() - t0);
            }
            assertTrue(worstPongNanos < TimeUnit.MILLISECONDS.toNanos(1000),
                    "slowest pong took " + worstPongNanos / 1000 + " us");

            long servedBefore = floodUsed.get();
            Thread.sleep(100);
            assertTrue(floodUsed.get() > servedBefore, "the busy ring keeps being served meanwhile");

            long t0 = System.nanoTime();
            busy.fe.getVringBase(0); // the stop is a command on the busy worker; a timeout would throw
            long stopMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
            assertTrue(stopMillis < DeviceRuntime.WORKER_TIMEOUT_MS / 5,
                    "GET_VRING_BASE on the busy ring took " + stopMillis + " ms");
        } finally {
            flooding.set(false);
            flood.join(5000);
        }
        assertNull(floodError.get(), () -> "flood driver failed: " + floodError.get());
    }
}
