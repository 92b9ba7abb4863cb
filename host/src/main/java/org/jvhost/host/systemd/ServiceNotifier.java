package org.jvhost.host.systemd;

import java.io.IOException;
import java.net.SocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.newsclub.net.unix.AFUNIXDatagramChannel;
import org.newsclub.net.unix.AFUNIXSocketAddress;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Tells the service manager how the service is doing, as sd_notify(3) does: each message is one
 * datagram of newline-separated {@code KEY=VALUE} assignments, sent to the AF_UNIX address in
 * {@code $NOTIFY_SOCKET} (a path starting with {@code /}, or an abstract-namespace name starting with
 * {@code @}). A unit with {@code Type=notify} counts as started at {@code READY=1}.
 *
 * <p>Without {@code $NOTIFY_SOCKET} (not started by systemd, or a unit of another type) every call
 * does nothing. A message that cannot be sent is logged, never thrown: the devices serve whether or
 * not the service manager hears of it, and systemd reports a missing READY=1 itself (a start timeout).
 */
public final class ServiceNotifier implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ServiceNotifier.class);
    /** The environment variable systemd sets for {@code Type=notify} units. */
    public static final String NOTIFY_SOCKET = "NOTIFY_SOCKET";

    private final String socketName;
    private final SocketAddress address;
    private AFUNIXDatagramChannel channel;

    private ServiceNotifier(String socketName, SocketAddress address) {
        this.socketName = socketName;
        this.address = address;
    }

    /** The notifier for {@code $NOTIFY_SOCKET} of this process. */
    public static ServiceNotifier fromEnvironment() {
        return to(System.getenv(NOTIFY_SOCKET));
    }

    /**
     * The notifier for {@code notifySocket}, a value of {@code $NOTIFY_SOCKET}: one that does nothing
     * if it is null or empty, or (with a WARN line naming it) if it is no AF_UNIX address.
     */
    public static ServiceNotifier to(String notifySocket) {
        if (notifySocket == null || notifySocket.isEmpty()) {
            return new ServiceNotifier(null, null);
        }
        try {
            return new ServiceNotifier(notifySocket, address(notifySocket));
        } catch (IOException | IllegalArgumentException e) {
            LOG.warn("{}={} is not a Unix socket address ({}): the service manager will not hear that jvhost is ready",
                    NOTIFY_SOCKET, notifySocket, e.getMessage());
            return new ServiceNotifier(null, null);
        }
    }

    private static SocketAddress address(String notifySocket) throws IOException {
        if (notifySocket.startsWith("@")) {
            return AFUNIXSocketAddress.inAbstractNamespace(notifySocket.substring(1));
        }
        if (!notifySocket.startsWith("/")) {
            throw new IllegalArgumentException("neither an absolute path nor @NAME");
        }
        return AFUNIXSocketAddress.of(Path.of(notifySocket));
    }

    /** Whether messages go anywhere. */
    public boolean enabled() {
        return address != null;
    }

    /** {@code READY=1}: start-up (or a reload) is complete; {@code status} is what systemctl shows. */
    public void ready(String status) {
        send("READY=1\nSTATUS=" + status.replace('\n', ' '));
    }

    /** {@code RELOADING=1}: a reload began; {@link #ready} ends it. */
    public void reloading() {
        send("RELOADING=1");
    }

    /** {@code STOPPING=1}: shutdown began. */
    public void stopping() {
        send("STOPPING=1\nSTATUS=stopping");
    }

    /**
     * {@code MAINPID=pid}: a hot upgrade handed the service over to process {@code pid}, which sends
     * the notifications from now on (allowed with {@code NotifyAccess=main}: the main process says it).
     */
    public void mainPid(long pid) {
        send("MAINPID=" + pid + "\nSTATUS=handed over to pid " + pid);
    }

    /** {@code WATCHDOG=1}: still making progress (see {@link Watchdog}). */
    public void watchdog() {
        send("WATCHDOG=1");
    }

    /** Sends one datagram; false (and a WARN line) if it could not be sent, false if disabled. */
    synchronized boolean send(String message) {
        if (address == null) {
            return false;
        }
        try {
            if (channel == null) {
                channel = AFUNIXDatagramChannel.open();
            }
            channel.send(ByteBuffer.wrap(message.getBytes(StandardCharsets.UTF_8)), address);
            return true;
        } catch (IOException e) {
            LOG.warn("cannot tell the service manager {} through {}={}: {}", message.replace('\n', ' '),
                    NOTIFY_SOCKET, socketName, e.toString());
            return false;
        }
    }

    @Override
    public synchronized void close() {
        if (channel != null) {
            try {
                channel.close();
            } catch (IOException e) {
                LOG.debug("closing the notification socket", e);
            }
            channel = null;
        }
    }
}
