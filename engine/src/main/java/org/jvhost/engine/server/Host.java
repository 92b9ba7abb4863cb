package org.jvhost.engine.server;

import java.io.IOException;
import java.nio.file.Path;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.VhostUserDevice;

/**
 * The engine's front door (STUB: signatures agreed between the engine owner and the CLI owner; bodies
 * to be written). One host serves many devices, each on its own socket, from one fixed pool of worker
 * threads.
 */
public final class Host implements AutoCloseable {

    /** How a device meets its front-end. */
    public enum Mode {
        /** jvhost binds and listens on the path; the front-end connects (QEMU {@code reconnect=1}). */
        LISTEN,
        /** The front-end listens; jvhost connects and re-connects with back-off after it goes away. */
        CONNECT
    }

    /** @param workers worker threads serving all queues (e.g. the number of CPUs) */
    public Host(int workers) {
        throw new UnsupportedOperationException("stub");
    }

    /** A context for a device about to be created with this name (passed to the provider). */
    public DeviceContext newContext(String deviceName) {
        throw new UnsupportedOperationException("stub");
    }

    /**
     * Starts serving {@code device} on {@code socket}. In LISTEN mode the socket file is created now
     * (an error names the path if that fails) and removed again by {@link #close()}.
     */
    public void addDevice(DeviceContext context, VhostUserDevice device, Path socket, Mode mode) throws IOException {
        throw new UnsupportedOperationException("stub");
    }

    /** Stops all devices: stops rings, closes connections and sockets, removes the socket files it created. */
    @Override
    public void close() {
        throw new UnsupportedOperationException("stub");
    }
}
