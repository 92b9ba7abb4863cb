package org.jvhost.engine.session;

import org.jvhost.engine.sys.LinuxSys;

/**
 * What the front-end told us about one ring while it is stopped (SET_VRING_NUM/ADDR/BASE and the
 * eventfds), plus the live {@link Ring} while it is started. Control thread only.
 */
final class QueueConfig {
    final int index;
    int num;
    boolean addrSet;
    long descUser;
    long availUser;
    long usedUser;
    /** VHOST_VRING_F_LOG: log used-ring writes at {@link #logGuestAddress} while logging. */
    boolean logUsed;
    long logGuestAddress;
    /** The next avail index to use when the ring starts (SET_VRING_BASE, or where GET_VRING_BASE stopped). */
    int base;
    int kickFd = -1;
    int callFd = -1;
    int errFd = -1;
    boolean enabled;
    /** Non-null while the ring is started. */
    Ring ring;
    /** When its worker last started the ring ({@link System#nanoTime}): where a hot upgrade's gap ends. */
    volatile long startedNanos;
    /**
     * Stopped for a hot upgrade, keeping its kick fd: it starts again where it stopped if the upgrade
     * is abandoned ({@link VringLifecycle#pause}).
     */
    boolean paused;

    QueueConfig(int index) {
        this.index = index;
    }

    boolean started() {
        return ring != null;
    }

    /** Closes the fds this config owns and forgets everything (the ring must be stopped). */
    void clear() {
        LinuxSys.closeQuietly(kickFd);
        LinuxSys.closeQuietly(callFd);
        LinuxSys.closeQuietly(errFd);
        kickFd = -1;
        callFd = -1;
        errFd = -1;
        num = 0;
        addrSet = false;
        descUser = 0;
        availUser = 0;
        usedUser = 0;
        logUsed = false;
        logGuestAddress = 0;
        base = 0;
        enabled = false;
        paused = false;
    }
}
