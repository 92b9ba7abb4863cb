package org.jvhost.host.it;

import java.nio.file.Path;
import java.util.Locale;

/**
 * The vhost-user back-end the integration tests drive: a virtio-net device that reflects every frame
 * the front-end transmits back into the front-end's receive queue. jvhost's loopback device is the
 * subject; DPDK's {@code net_vhost} with a MAC-swapping forwarder is the reference that proves the
 * harness itself (a test that fails against DPDK is a harness bug, not a jvhost bug).
 *
 * <p>Selected with {@code -Djvhost.it.backend=jvhost|dpdk} (default jvhost).
 */
public interface Backend {

    /** Which side of the vhost-user socket the back-end takes. */
    enum Role {
        /** The back-end creates the socket and listens; the front-end connects. */
        LISTEN,
        /** The front-end listens; the back-end connects to its socket. */
        CONNECT
    }

    String name();

    /** Skips the test (JUnit assumption) if the back-end's binary is not installed. */
    void assumeAvailable();

    /**
     * Starts a reflector with {@code queues} queue pairs on {@code socket} and returns once it can take
     * a front-end: for {@link Role#LISTEN}, once a new socket file exists. The caller closes it.
     *
     * @param name names the process and its log file in {@code logDir}
     */
    ProcessUnderTest start(String name, Path socket, int queues, Role role, Path logDir);

    static Backend selected() {
        String which = System.getProperty("jvhost.it.backend", "jvhost").trim().toLowerCase(Locale.ROOT);
        return switch (which) {
            case "jvhost", "" -> new JvhostBackend();
            case "dpdk" -> new DpdkVhostBackend();
            default -> throw new IllegalArgumentException("jvhost.it.backend=" + which + ": expected jvhost or dpdk");
        };
    }
}
