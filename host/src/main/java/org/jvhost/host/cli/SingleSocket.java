package org.jvhost.host.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.jvhost.host.config.DeviceSpec;

/**
 * {@code serve --socket-path PATH} and {@code --fd N}, the vhost-user back-end program convention: one
 * {@code --device} may leave its socket out and take the one these give.
 */
final class SingleSocket {

    private SingleSocket() {
    }

    /**
     * Gives the one device without socket=/connect= the socket of {@code --socket-path} (or leaves it
     * to {@code --fd}); every other device must name its own.
     *
     * @throws IllegalArgumentException naming the option or device that is wrong
     */
    static List<DeviceSpec> place(List<DeviceSpec> given, Path socketPath, Integer fd) {
        if (socketPath != null && fd != null) {
            throw bad("--socket-path and --fd exclude each other: give the socket's path or an inherited fd");
        }
        if (fd != null && fd < 0) {
            throw bad("--fd " + fd + ": not a file descriptor");
        }
        String source = socketPath != null ? "--socket-path" : fd != null ? "--fd" : null;
        List<DeviceSpec> placed = new ArrayList<>();
        DeviceSpec taker = null;
        for (DeviceSpec d : given) {
            if (d.socket() != null) {
                placed.add(d);
                continue;
            }
            if (source == null) {
                throw bad("'" + d.text() + "': expected " + DeviceSpec.GRAMMAR + ": missing socket=PATH "
                        + "(or connect=PATH), or give --socket-path PATH or --fd N for a single device");
            }
            if (taker != null) {
                throw bad("'" + d.text() + "' and '" + taker.text() + "' both lack socket=PATH; "
                        + source + " serves a single device");
            }
            taker = d;
            try {
                placed.add(socketPath != null ? d.withSocket(socketPath) : d);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--socket-path " + e.getMessage(), e);
            }
        }
        if (source != null && taker == null) {
            throw bad(source + ": every --device names its own socket; leave socket=PATH out of the one "
                    + source + " is for");
        }
        if (fd != null) {
            for (String key : new String[] {DeviceSpec.KEY_SOCKET_MODE, DeviceSpec.KEY_SOCKET_GROUP}) {
                if (taker.options().containsKey(key)) {
                    throw bad("'" + taker.text() + "': " + key + " does not apply to an inherited socket (--fd): "
                            + "its creator sets its file's mode and group");
                }
            }
        }
        return placed;
    }

    private static IllegalArgumentException bad(String message) {
        return new IllegalArgumentException(message);
    }
}
