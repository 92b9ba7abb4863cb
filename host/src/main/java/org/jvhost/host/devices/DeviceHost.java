package org.jvhost.host.devices;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.LongConsumer;
import java.util.function.Supplier;
import org.jvhost.engine.event.Polling;
import org.jvhost.engine.instrument.Instrument;
import org.jvhost.engine.memory.MemoryBudget;
import org.jvhost.engine.server.DeviceSnapshot;
import org.jvhost.engine.server.Handover;
import org.jvhost.engine.server.Host;
import org.jvhost.engine.server.SocketAccess;
import org.jvhost.engine.server.Takeover;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.VhostUserDevice;

/**
 * What {@code serve} needs from the engine: {@link Host}'s front door, as an interface so the CLI's
 * checks and start-up order can be tested without sockets or worker threads.
 */
public interface DeviceHost extends AutoCloseable {

    /** @see Host#newContext(String) */
    DeviceContext newContext(String deviceName);

    /** @see Host#addDevice(DeviceContext, VhostUserDevice, Path, Host.Mode) */
    void addDevice(DeviceContext context, VhostUserDevice device, Path socket, Host.Mode mode) throws IOException;

    /** @see Host#addDevice(DeviceContext, VhostUserDevice, Path, Host.Mode, SocketAccess) */
    default void addDevice(DeviceContext context, VhostUserDevice device, Path socket, Host.Mode mode,
            SocketAccess access) throws IOException {
        addDevice(context, device, socket, mode);
    }

    /** @see Host#addDevice(DeviceContext, VhostUserDevice, int, SocketAccess) */
    default void addDevice(DeviceContext context, VhostUserDevice device, int listeningFd, SocketAccess access)
            throws IOException {
        throw new IOException("this host cannot serve an inherited socket (fd " + listeningFd + ")");
    }

    /** @see Host#removeDevice(DeviceContext) */
    boolean removeDevice(DeviceContext context);

    /**
     * @see Host#instrument(DeviceContext)
     * @throws UnsupportedOperationException if this host has no instrument (a test double)
     */
    default Instrument instrument(DeviceContext context) {
        throw new UnsupportedOperationException("this host has no protocol trace or strict mode");
    }

    /** @see Host#snapshot(DeviceContext) */
    DeviceSnapshot snapshot(DeviceContext context);

    /** @see Host#loopsAnswer(long) */
    default boolean loopsAnswer(long timeoutMs) {
        return true;
    }

    /**
     * @see Host#adopt(Takeover)
     * @throws UnsupportedOperationException if this host cannot take over (a test double)
     */
    default void adopt(Takeover from) {
        throw new UnsupportedOperationException("this host cannot take over from a running jvhost");
    }

    /** @see Host#completeTakeover() */
    default void completeTakeover() throws IOException {
    }

    /** @see Host#startAdopted() */
    default java.util.concurrent.CompletableFuture<Void> startAdopted() {
        return java.util.concurrent.CompletableFuture.completedFuture(null);
    }

    /**
     * Offers this host to a successor ({@link Handover#listen}); null if this host cannot (a test double).
     */
    default AutoCloseable offerHandover(Path socket, Supplier<Map<String, Integer>> services,
            LongConsumer handedOver) throws IOException {
        return null;
    }

    /** Stops everything; safe to call more than once. */
    @Override
    void close();

    /**
     * Creates the host with {@code workers} worker threads polling busy queues within {@code polling},
     * mapping guest memory within {@code memoryBudget}.
     */
    @FunctionalInterface
    interface Factory {
        DeviceHost create(int workers, Polling polling, MemoryBudget memoryBudget);
    }

    /** The real thing: an engine {@link Host}, closed at most once. */
    static DeviceHost engine(int workers, Polling polling, MemoryBudget memoryBudget) {
        Host host = new Host(workers, polling, memoryBudget);
        return new DeviceHost() {
            private boolean closed;

            @Override
            public DeviceContext newContext(String deviceName) {
                return host.newContext(deviceName);
            }

            @Override
            public void addDevice(DeviceContext context, VhostUserDevice device, Path socket, Host.Mode mode)
                    throws IOException {
                host.addDevice(context, device, socket, mode);
            }

            @Override
            public void addDevice(DeviceContext context, VhostUserDevice device, Path socket, Host.Mode mode,
                    SocketAccess access) throws IOException {
                host.addDevice(context, device, socket, mode, access);
            }

            @Override
            public void addDevice(DeviceContext context, VhostUserDevice device, int listeningFd,
                    SocketAccess access) throws IOException {
                host.addDevice(context, device, listeningFd, access);
            }

            @Override
            public boolean removeDevice(DeviceContext context) {
                return host.removeDevice(context);
            }

            @Override
            public Instrument instrument(DeviceContext context) {
                return host.instrument(context);
            }

            @Override
            public DeviceSnapshot snapshot(DeviceContext context) {
                return host.snapshot(context);
            }

            @Override
            public boolean loopsAnswer(long timeoutMs) {
                return host.loopsAnswer(timeoutMs);
            }

            @Override
            public void adopt(Takeover from) {
                host.adopt(from);
            }

            @Override
            public void completeTakeover() throws IOException {
                host.completeTakeover();
            }

            @Override
            public java.util.concurrent.CompletableFuture<Void> startAdopted() {
                return host.startAdopted();
            }

            @Override
            public AutoCloseable offerHandover(Path socket, Supplier<Map<String, Integer>> services,
                    LongConsumer handedOver) throws IOException {
                return Handover.listen(host, socket, services, handedOver);
            }

            @Override
            public synchronized void close() {
                if (!closed) {
                    closed = true;
                    host.close();
                }
            }
        };
    }
}
