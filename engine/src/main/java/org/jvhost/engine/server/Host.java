package org.jvhost.engine.server;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.jvhost.engine.event.DeviceRuntime;
import org.jvhost.engine.event.WorkerPool;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.VhostUserDevice;
import org.slf4j.LoggerFactory;

/**
 * The engine's front door. One host serves many devices, each on its own socket, from one fixed pool
 * of worker threads ({@code jvhost-worker-N}); each device has a control thread
 * ({@code jvhost-ctl-<device>}) that serves one front-end connection at a time.
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

    private final WorkerPool pool;
    private final AtomicInteger serials = new AtomicInteger();
    private final List<DeviceServer> servers = new ArrayList<>();
    private boolean closed;

    /**
     * @param workers worker threads serving all queues (e.g. the number of CPUs)
     * @throws UncheckedIOException if the kernel refuses an epoll set or eventfd
     */
    public Host(int workers) {
        try {
            this.pool = new WorkerPool(workers);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + workers + " worker threads: " + e.getMessage(), e);
        }
    }

    /** A context for a device about to be created with this name (passed to the provider). */
    public DeviceContext newContext(String deviceName) {
        return new HostDeviceContext(this, new DeviceRuntime(deviceName, serials.getAndIncrement(), pool));
    }

    /**
     * Starts serving {@code device} on {@code socket}. In LISTEN mode the socket file is created now
     * (an error names the path if that fails, or if another process listens there; a stale file is
     * replaced) and removed again by {@link #close()}. In CONNECT mode jvhost connects to the
     * front-end's socket in the background, retrying with back-off (100 ms doubling to 2 s).
     *
     * @throws IllegalArgumentException if {@code context} was not made by this host's {@link #newContext}
     */
    public synchronized void addDevice(DeviceContext context, VhostUserDevice device, Path socket, Mode mode)
            throws IOException {
        if (closed) {
            throw new IllegalStateException("host is closed");
        }
        if (!(context instanceof HostDeviceContext) || ((HostDeviceContext) context).host != this) {
            throw new IllegalArgumentException(context + ": context was not created by this host");
        }
        DeviceRuntime runtime = ((HostDeviceContext) context).runtime;
        runtime.attach(device);
        servers.add(new DeviceServer(runtime, socket.toAbsolutePath(), mode));
    }

    /** The state of the device created with {@code context}. */
    public synchronized DeviceStatus status(DeviceContext context) {
        DeviceRuntime runtime = ((HostDeviceContext) context).runtime;
        for (DeviceServer s : servers) {
            if (s.runtime() == runtime) {
                return new DeviceStatus(s.connected(), s.sessions(), runtime.isFailed());
            }
        }
        throw new IllegalArgumentException(context + ": no such device in this host");
    }

    /**
     * Stops serving the device created with {@code context}: its rings stop, its connection and socket
     * close, the socket file it created is removed, and the device is {@linkplain VhostUserDevice#close()
     * closed}. Other devices are not touched. Blocks until the device's threads have ended (a few
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
        // outside the lock: closing joins the device's threads, and other devices stay manageable meanwhile
        server.close();
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
        for (DeviceServer s : servers) {
            s.close();
            closeDevice(s);
        }
        servers.clear();
        pool.close();
    }
}
