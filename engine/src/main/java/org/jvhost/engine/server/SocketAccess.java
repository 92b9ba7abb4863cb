package org.jvhost.engine.server;

import java.util.Set;
import java.util.TreeSet;

/**
 * Who may reach a device's socket. The mode and group apply to a socket file jvhost creates
 * ({@link Host.Mode#LISTEN}), which is born with at most the owner bits and then given them without
 * following a symlink ({@link SocketFile}); the uid allow-list applies to every front-end connection,
 * checked with SO_PEERCRED when it is accepted or made.
 *
 * @param mode        permission bits of the socket file (e.g. {@code 0600}: only jvhost's user)
 * @param group       group to give the socket file, or null to keep jvhost's
 * @param allowedUids front-end uids accepted; empty accepts every uid that can open the socket
 */
public record SocketAccess(int mode, String group, Set<Integer> allowedUids) {

    /** Owner-only socket files: a front-end runs as jvhost's user unless the operator says otherwise. */
    public static final int DEFAULT_MODE = 0600;

    /** Mode 0600, jvhost's group, any uid. */
    public static final SocketAccess DEFAULT = new SocketAccess(DEFAULT_MODE, null, Set.of());

    public SocketAccess {
        if ((mode & ~0777) != 0) {
            throw new IllegalArgumentException("socket mode 0" + Integer.toOctalString(mode)
                    + " has bits beyond 0777");
        }
        allowedUids = Set.copyOf(allowedUids);
    }

    /** Whether a front-end running as {@code uid} may connect. */
    public boolean allows(long uid) {
        return allowedUids.isEmpty() || (uid >= 0 && uid <= Integer.MAX_VALUE && allowedUids.contains((int) uid));
    }

    /** The allow-list in order, for messages. */
    String describeUids() {
        return new TreeSet<>(allowedUids).toString();
    }
}
