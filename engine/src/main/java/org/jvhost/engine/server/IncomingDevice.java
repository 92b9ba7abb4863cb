package org.jvhost.engine.server;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.transport.Message;
import org.jvhost.spi.DeviceState;
import org.jvhost.spi.VhostUserDevice;

/**
 * One device as the previous process handed it over ({@link Takeover}); every fd here is ours until taken.
 * Not thread-safe: the {@link Takeover} and then the device's {@link DeviceServer} hold it.
 */
final class IncomingDevice {
    final String name;
    final int flags;
    int listenerFd;
    int connectionFd;
    /** What its provider creates it with (an early device's, or the state in a one-phase takeover). */
    DeviceState resources;
    DeviceState state;
    /** An early connection's requests of the first phase (all but where the rings stand). */
    final List<Message> setup = new ArrayList<>();
    /** The requests of the second phase (all of them in a one-phase takeover). */
    final List<Message> replay = new ArrayList<>();
    /** Whether the second phase had this device's connection. */
    boolean ringsCame;
    /** Whether the device is created before the second phase, its connection set up ({@link #setUpEarly}). */
    boolean twoPhase;

    IncomingDevice(String name, int flags, int listenerFd, int connectionFd) {
        this.name = name;
        this.flags = flags;
        this.listenerFd = listenerFd;
        this.connectionFd = connectionFd;
    }

    int listenerFd() {
        return listenerFd;
    }

    int takeListener() {
        int fd = listenerFd;
        listenerFd = -1;
        return fd;
    }

    int takeConnection() {
        int fd = connectionFd;
        connectionFd = -1;
        return fd;
    }

    /** Whether its connection is set up now, before the previous process pauses the rings. */
    boolean setUpEarly() {
        return twoPhase && connectionFd >= 0;
    }

    /**
     * Whether a connection set up early lost its rings: the previous process ended it between the two
     * phases (a hostile guest broke a ring), so it must end here too.
     */
    boolean ringsLost() {
        return (flags & HandoverLayout.F_EARLY) != 0 && !ringsCame;
    }

    List<Message> takeSetup() {
        List<Message> r = new ArrayList<>(setup);
        setup.clear();
        return r;
    }

    List<Message> takeReplay() {
        List<Message> r = new ArrayList<>(replay);
        replay.clear();
        return r;
    }

    void closeReplay() {
        // plain loops: a first lambda capture here, right after the pause, cost ms (Rehearsal)
        for (Message m : setup) {
            m.closeFds();
        }
        setup.clear();
        for (Message m : replay) {
            m.closeFds();
        }
        replay.clear();
    }

    /** The provider's create has had the resources: the host's own fds of them close. */
    void closeResources() {
        DeviceState r = resources;
        resources = null;
        if (r != null && r != state) {
            for (int fd : r.fds()) {
                LinuxSys.closeQuietly(fd);
            }
        }
    }

    /**
     * Gives {@code device} the state its predecessor saved, if it came already.
     *
     * @throws IOException naming the device if it refuses the state (its fds are closed then)
     */
    void restoreState(VhostUserDevice device) throws IOException {
        DeviceState s = state;
        state = null;
        if (s == null) {
            return;
        }
        try {
            device.restoreState(s);
        } catch (RuntimeException e) {
            for (int fd : s.fds()) {
                LinuxSys.closeQuietly(fd);
            }
            throw new IOException(name + ": the device cannot restore the state of the previous jvhost ("
                    + s + "): " + e.getMessage(), e);
        }
    }

    void close() {
        LinuxSys.closeQuietly(takeListener());
        LinuxSys.closeQuietly(takeConnection());
        closeReplay();
        closeResources();
        if (state != null) {
            for (int fd : state.fds()) {
                LinuxSys.closeQuietly(fd);
            }
            state = null;
        }
    }
}
