package org.jvhost.engine.server;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import org.jvhost.engine.device.DeviceRuntime;
import org.jvhost.engine.event.LoopMailbox;
import org.jvhost.engine.event.Polling;
import org.jvhost.engine.event.WorkerPool;
import org.jvhost.engine.instrument.Instrument;
import org.jvhost.engine.memory.MemoryBudget;
import org.jvhost.engine.sys.NativeException;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.DeviceState;
import org.jvhost.spi.VhostUserDevice;
import org.slf4j.LoggerFactory;

/**
 * The engine's front door. One host serves many devices, each on its own socket, from one fixed pool
 * of worker threads ({@code jvhost-worker-N}) for the queues and {@link #CONTROL_THREADS} control
 * threads ({@code jvhost-control-N}) for the sockets: listening, reading vhost-user messages
 * incrementally and reconnecting all happen in their event loops, so an idle device costs no thread.
 * Each device serves one front-end connection at a time.
 *
 * <pre>{@code
 * try (Host host = new Host(Runtime.getRuntime().availableProcessors())) {
 *     DeviceContext ctx = host.newContext("loopback@/tmp/lo.sock");
 *     VhostUserDevice dev = provider.create(options, ctx);
 *     host.addDevice(ctx, dev, Path.of("/tmp/lo.sock"), Host.Mode.LISTEN);
 *     ...                                  // wait for SIGTERM
 * }
 * }</pre>
 */
public final class Host implements AutoCloseable {

    /** How a device meets its front-end. */
    public enum Mode {
        /** jvhost binds and listens on the path; the front-end connects (QEMU {@code reconnect=1}). */
        LISTEN,
        /** The front-end listens; jvhost connects and re-connects with back-off after it goes away. */
        CONNECT
    }

    /**
     * What a device is doing, for logs and tests.
     *
     * @param connected whether a front-end is connected now
     * @param sessions  how many connections the device has served so far (including the current one)
     * @param failed    whether a queue callback threw and the device waits for a reset
     */
    public record DeviceStatus(boolean connected, long sessions, boolean failed) {
    }

    /**
     * Control threads; devices are spread over them round robin as they are added.
     * No control thread ever waits for a worker or a front-end, so two suffice for any number of devices.
     */
    public static final int CONTROL_THREADS = 2;
    private static final long CLOSE_TIMEOUT_MS = 10_000;

    private final WorkerPool pool;
    private final MemoryBudget memoryBudget;
    private final ControlLoop[] loops = new ControlLoop[CONTROL_THREADS];
    private final AtomicInteger serials = new AtomicInteger();
    private final List<DeviceServer> servers = new ArrayList<>();
    private boolean closed;
    private int loopTurn;
    /** What the previous process handed over, while devices are being added ({@link #adopt}). */
    private Takeover takeover;

    /**
     * A host whose workers poll busy queues for {@link WorkerPool#DEFAULT_POLL_MICROS}.
     *
     * @param workers worker threads serving all queues (e.g. the number of CPUs)
     * @throws UncheckedIOException if the kernel refuses an epoll set or eventfd
     */
    public Host(int workers) {
        this(workers, WorkerPool.DEFAULT_POLL_MICROS);
    }

    /**
     * @param workers    worker threads serving all queues (e.g. the number of CPUs)
     * @param pollMicros how long a worker keeps polling a busy queue after it last found work before it
     *                   asks the driver to kick again and sleeps; 0 disables polling
     * @throws UncheckedIOException if the kernel refuses an epoll set or eventfd
     */
    public Host(int workers, int pollMicros) {
        this(workers, pollMicros, MemoryBudget.defaults());
    }

    /**
     * @param workers      worker threads serving all queues (e.g. the number of CPUs)
     * @param pollMicros   how long a worker keeps polling a busy queue after it last found work, at first (it
     *                     may grow to {@link Polling#startingAt}); 0 disables polling
     * @param memoryBudget how much guest memory one connection, and all together, may map
     * @throws UncheckedIOException if the kernel refuses an epoll set or eventfd
     */
    public Host(int workers, int pollMicros, MemoryBudget memoryBudget) {
        this(workers, Polling.startingAt(pollMicros), memoryBudget);
    }

    /**
     * @param workers      worker threads serving all queues (e.g. the number of CPUs)
     * @param polling      how long a worker keeps polling a busy queue after it last found work, at first
     *                     and at most ({@link Polling})
     * @param memoryBudget how much guest memory one connection, and all together, may map
     * @throws UncheckedIOException if the kernel refuses an epoll set or eventfd
     */
    public Host(int workers, Polling polling, MemoryBudget memoryBudget) {
        this.memoryBudget = memoryBudget;
        try {
            this.pool = new WorkerPool(workers, polling);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + workers + " worker threads: " + e.getMessage(), e);
        }
        try {
            for (int i = 0; i < loops.length; i++) {
                loops[i] = new ControlLoop(i);
            }
        } catch (NativeException e) {
            closeLoops();
            pool.close();
            throw new UncheckedIOException("cannot start the control threads: " + e.getMessage(), e);
        }
    }

    /** A context for a device about to be created with this name (passed to the provider). */
    public DeviceContext newContext(String deviceName) {
        return new HostDeviceContext(this, new DeviceRuntime(deviceName, serials.getAndIncrement(), pool,
                memoryBudget));
    }

    /**
     * Starts serving {@code device} on {@code socket}. In LISTEN mode the socket file is created now
     * (an error names the path if that fails, or if another process listens there; a stale file is
     * replaced) and removed again by {@link #close()}. In CONNECT mode jvhost connects to the
     * front-end's socket in the background, retrying with back-off (100 ms doubling to 2 s).
     *
     * @throws IllegalArgumentException if {@code context} was not made by this host's {@link #newContext}
     */
    public void addDevice(DeviceContext context, VhostUserDevice device, Path socket, Mode mode)
            throws IOException {
        addDevice(context, device, socket, mode, SocketAccess.DEFAULT);
    }

    /**
     * {@link #addDevice(DeviceContext, VhostUserDevice, Path, Mode)} with {@code access}: the socket
     * file's mode and group (LISTEN) and the front-end uids allowed (both modes). A socket file is
     * created with at most {@code access.mode()} from the start, then given the group and exact mode;
     * an error names the path.
     */
    public synchronized void addDevice(DeviceContext context, VhostUserDevice device, Path socket, Mode mode,
            SocketAccess access) throws IOException {
        DeviceRuntime runtime = attach(context, device);
        ControlLoop loop = loopFor(runtime);
        Path path = socket.toAbsolutePath();
        IncomingDevice in = takeover == null ? null : takeover.claim(runtime.name());
        if (in != null) {
            servers.add(DeviceServer.adopt(runtime, loop, mode == Mode.LISTEN ? path : null, mode, access, in));
            return;
        }
        servers.add(mode == Mode.LISTEN ? DeviceServer.listen(runtime, loop, path, access)
                : DeviceServer.connect(runtime, loop, path, access));
    }

    /**
     * Serves {@code device} on an inherited listening Unix socket (spec "Backend program conventions",
     * {@code --fd}). The host takes the fd over and closes it at the end, but leaves the socket file
     * (created by whoever made the socket) alone. {@code access.allowedUids()} applies.
     *
     * @throws IOException if {@code listeningFd} is not a listening Unix socket
     */
    public synchronized void addDevice(DeviceContext context, VhostUserDevice device, int listeningFd,
            SocketAccess access) throws IOException {
        DeviceRuntime runtime = attach(context, device);
        IncomingDevice in = takeover == null ? null : takeover.claim(runtime.name());
        if (in != null) {
            servers.add(DeviceServer.adopt(runtime, loopFor(runtime), null, Mode.LISTEN, access, in));
            return;
        }
        servers.add(DeviceServer.inherit(runtime, loopFor(runtime), listeningFd, access));
    }

    private DeviceRuntime attach(DeviceContext context, VhostUserDevice device) {
        if (closed) {
            throw new IllegalStateException("host is closed");
        }
        if (!(context instanceof HostDeviceContext) || ((HostDeviceContext) context).host != this) {
            throw new IllegalArgumentException(context + ": context was not created by this host");
        }
        for (DeviceServer s : servers) {
            if (s.runtime() == ((HostDeviceContext) context).runtime) {
                throw new IllegalArgumentException(context + ": device already added");
            }
        }
        DeviceRuntime runtime = ((HostDeviceContext) context).runtime;
        runtime.attach(device);
        return runtime;
    }

    // ---- hot upgrade ----------------------------------------------------------------------------

    /**
     * The successor's side: devices added from now on take over what {@code from} holds for them (by
     * device name) instead of creating sockets, and start serving only at {@link #startAdopted()}.
     */
    public synchronized void adopt(Takeover from) {
        this.takeover = from;
    }

    /** The state the previous process saved for device {@code name}, while taking over; else null. */
    synchronized DeviceState handedOverState(String name) {
        return takeover == null ? null : takeover.peekState(name);
    }

    /**
     * The successor has acknowledged the handover: every device taken over starts serving (listening,
     * and resuming its connection's rings where the previous process paused them). The result completes
     * once every connection taken over runs again (normally, or not, if one ended instead).
     */
    public synchronized CompletableFuture<Void> startAdopted() {
        takeover = null;
        CompletableFuture<?>[] running = new CompletableFuture<?>[servers.size()];
        for (int i = 0; i < running.length; i++) {
            DeviceServer s = servers.get(i);
            s.loop().execute(s::startAdopted);
            running[i] = s.adoptedRunning();
        }
        return CompletableFuture.allOf(running);
    }

    /**
     * The successor's side, once every device is created: rehearses a takeover while the previous process
     * still serves ({@link Rehearsal}), collects the garbage of the first phase, waits for the second phase of the handover (the previous process
     * pauses its rings: {@link Takeover#proceed}) and gives each device taken over early its state.
     *
     * @throws IOException if the second phase does not come, or a device refuses its state
     */
    public void completeTakeover() throws IOException {
        List<DeviceServer> all;
        Takeover t;
        synchronized (this) {
            t = takeover;
            all = new ArrayList<>(servers);
        }
        if (t == null) {
            return;
        }
        if (t.ringsRunElsewhere()) {
            Rehearsal.run(loops[0], pool, memoryBudget, DeviceRuntime.WORKER_TIMEOUT_MS);
            t.collectedMs = Rehearsal.collectGarbage();
            t.compilerQuietAfterMs = Rehearsal.awaitCompilerQuiet(Rehearsal.QUIET_MAX_MS);
        }
        t.proceed();
        for (DeviceServer s : all) {
            s.finishAdoption();
        }
    }

    /**
     * The running process's side, first phase: freezes every device on its loop ({@link
     * DeviceServer#freezeInLoop}), and holds the workers' polling ({@link WorkerPool#holdPolling}) until this
     * process exits or the devices resume. If one cannot be frozen, the others resume and the failure names the device.
     */
    synchronized List<Handover.Frozen> freezeAll(long busyMs) throws IOException {
        pool.holdPolling(true);
        return onEachLoop((s, f) -> s.freezeInLoop(f, busyMs), busyMs + CLOSE_TIMEOUT_MS, "freeze");
    }

    /** The second phase: pauses the rings of every frozen connection ({@link DeviceServer#pauseInLoop}). */
    synchronized List<Handover.Outgoing> pauseAll(long busyMs) throws IOException {
        return onEachLoop(DeviceServer::pauseInLoop, busyMs + CLOSE_TIMEOUT_MS, "pause");
    }

    /** Runs {@code step} for every device on its loop; what they give, but nulls. On a failure all resume. */
    private <T> List<T> onEachLoop(java.util.function.BiConsumer<DeviceServer, CompletableFuture<T>> step,
            long timeoutMs, String what) throws IOException {
        List<CompletableFuture<T>> all = new ArrayList<>();
        for (DeviceServer s : servers) {
            CompletableFuture<T> f = new CompletableFuture<>();
            s.loop().execute(() -> step.accept(s, f));
            all.add(f);
        }
        List<T> out = new ArrayList<>();
        try {
            CompletableFuture.allOf(all.toArray(new CompletableFuture<?>[0])).get(timeoutMs, TimeUnit.MILLISECONDS);
            for (CompletableFuture<T> f : all) {
                if (f.get() != null) {
                    out.add(f.get());
                }
            }
            return out;
        } catch (ExecutionException e) {
            resumeAll();
            throw new IOException(e.getCause().getMessage(), e.getCause());
        } catch (TimeoutException e) {
            resumeAll();
            throw new IOException("the devices did not " + what + " within " + timeoutMs + " ms");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            resumeAll();
            throw new IOException("interrupted while the devices " + what);
        }
    }

    /** The handover was abandoned: every paused device serves again. */
    synchronized void resumeAll() {
        pool.holdPolling(false);
        for (DeviceServer s : servers) {
            s.loop().execute(s::resumeInLoop);
        }
    }

    /** Round robin over the control loops, in the order devices are added. */
    private ControlLoop loopFor(DeviceRuntime runtime) {
        return loops[Math.floorMod(loopTurn++, loops.length)];
    }

    /**
     * Whether every loop thread, each worker and each control loop, runs a posted no-op within
     * {@code timeoutMs}: proof of progress for a service manager's watchdog. A worker held by a device
     * callback that does not return, or a loop that died, makes it false. Not from a loop thread.
     */
    public boolean loopsAnswer(long timeoutMs) {
        List<CompletableFuture<Void>> done = new ArrayList<>(pool.postToEach(() -> { }));
        for (ControlLoop loop : loops) {
            done.add(LoopMailbox.completion(loop::execute, () -> { }));
        }
        try {
            CompletableFuture.allOf(done.toArray(new CompletableFuture<?>[0])).get(timeoutMs, TimeUnit.MILLISECONDS);
            return true;
        } catch (TimeoutException | ExecutionException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** The state of the device created with {@code context}. */
    public synchronized DeviceStatus status(DeviceContext context) {
        DeviceServer s = serverOf(context);
        if (s == null) {
            throw new IllegalArgumentException(context + ": no such device in this host");
        }
        return new DeviceStatus(s.connected(), s.sessions(), s.runtime().isFailed());
    }

    /**
     * Stops serving the device created with {@code context}: its rings stop, its connection and socket
     * close, the socket file it created is removed, and the device is {@linkplain VhostUserDevice#close()
     * closed}. Other devices are not touched. Blocks until its control loop has stopped it (a few
     * seconds at most).
     *
     * @return false if the device is not (or no longer) served by this host
     */
    public boolean removeDevice(DeviceContext context) {
        DeviceServer server;
        synchronized (this) {
            server = serverOf(context);
            if (server == null) {
                return false;
            }
            servers.remove(server);
        }
        // outside the lock: closing waits for the device's control loop, and other devices stay manageable meanwhile
        try {
            server.close();
        } catch (TimeoutException e) {
            LoggerFactory.getLogger(Host.class).warn("{}: not stopped: {}", server.runtime().name(), e.getMessage());
        }
        closeDevice(server);
        return true;
    }

    /**
     * The state and counters of the device created with {@code context}, or null if this host does not
     * serve it.
     */
    public DeviceSnapshot snapshot(DeviceContext context) {
        DeviceServer server;
        synchronized (this) {
            server = serverOf(context);
        }
        return server == null ? null : DeviceSnapshot.of(server);
    }

    /**
     * The protocol trace and strict-mode settings of the device created with {@code context} (see
     * {@link Instrument}); set them before the device is added so its first connection is covered.
     *
     * @throws IllegalArgumentException if {@code context} was not made by this host's {@link #newContext}
     */
    public Instrument instrument(DeviceContext context) {
        if (!(context instanceof HostDeviceContext) || ((HostDeviceContext) context).host != this) {
            throw new IllegalArgumentException(context + ": context was not created by this host");
        }
        return ((HostDeviceContext) context).runtime.instrument();
    }

    private DeviceServer serverOf(DeviceContext context) {
        if (!(context instanceof HostDeviceContext) || ((HostDeviceContext) context).host != this) {
            return null;
        }
        DeviceRuntime runtime = ((HostDeviceContext) context).runtime;
        for (DeviceServer s : servers) {
            if (s.runtime() == runtime) {
                return s;
            }
        }
        return null;
    }

    private static void closeDevice(DeviceServer server) {
        server.runtime().instrument().close();
        try {
            server.runtime().device().close();
        } catch (RuntimeException e) {
            LoggerFactory.getLogger(Host.class).warn("{}: closing the device failed", server.runtime().name(), e);
        }
    }

    /** Stops all devices: stops rings, closes connections and sockets, removes the socket files it created. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        // every loop closes its devices at once: rings stop through the normal stop path on their
        // workers, connections and listening sockets close, socket files go
        List<CompletableFuture<Void>> done = new ArrayList<>();
        for (ControlLoop loop : loops) {
            List<DeviceServer> mine = new ArrayList<>();
            for (DeviceServer s : servers) {
                if (s.loop() == loop) {
                    mine.add(s);
                }
            }
            CompletableFuture<Void> f = new CompletableFuture<>();
            loop.execute(() -> {
                // complete once every session has released its fds and mappings (after its workers)
                List<CompletableFuture<Void>> released = new ArrayList<>();
                try {
                    mine.forEach(s -> released.add(s.closeInLoop()));
                } finally {
                    CompletableFuture.allOf(released.toArray(new CompletableFuture<?>[0]))
                            .whenComplete((v, t) -> f.complete(null));
                }
            });
            done.add(f);
        }
        try {
            CompletableFuture.allOf(done.toArray(new CompletableFuture<?>[0])).get(CLOSE_TIMEOUT_MS, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException | TimeoutException e) {
            LoggerFactory.getLogger(Host.class).warn("devices did not all stop within {} ms: {}",
                    CLOSE_TIMEOUT_MS, e.toString());
        }
        for (DeviceServer s : servers) {
            closeDevice(s);
        }
        servers.clear();
        closeLoops();
        pool.close();
    }

    private void closeLoops() {
        for (ControlLoop loop : loops) {
            if (loop != null) {
                loop.close();
            }
        }
    }
}
