package org.jvhost.host.cli;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.jvhost.host.control.ControlServer;
import org.jvhost.host.devices.DeviceHost;
import org.jvhost.host.devices.DeviceManager;
import org.jvhost.host.metrics.DeviceMetrics;
import org.jvhost.host.metrics.Exposition;
import org.jvhost.host.metrics.JvhostRegistry;
import org.jvhost.host.metrics.MetricsServer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What {@code serve} runs besides the devices: the control socket, the metrics endpoint and the handover
 * socket a successor takes over from. {@link #stop} closes them in reverse order of start, then the host.
 * A takeover starts the last two from the predecessor's exit, on another thread, hence the lock.
 */
final class ServeServices {
    private static final Logger LOG = LoggerFactory.getLogger(ServeServices.class);

    private final Lifecycle lifecycle;
    private final List<AutoCloseable> services = new ArrayList<>();

    ServeServices(Lifecycle lifecycle) {
        this.lifecycle = lifecycle;
    }

    /**
     * The control socket (taken over as {@code inheritedFd} if that is not -1); one nobody asked for
     * explicitly may fail (another jvhost has it) with a warning, and null.
     */
    ControlServer startControl(Path path, boolean byDefault, DeviceManager manager, int inheritedFd)
            throws IOException {
        try {
            ControlServer s = inheritedFd >= 0 ? ControlServer.adopt(path, inheritedFd, new ControlRequests(manager))
                    : ControlServer.start(path, new ControlRequests(manager));
            add(s);
            return s;
        } catch (IOException e) {
            if (!byDefault) {
                throw e;
            }
            LOG.warn("no control socket: the default one cannot be served ({}); give --control PATH", e.getMessage());
            return null;
        }
    }

    /** The metrics endpoint on {@code address}, if there is one. */
    void startMetrics(InetSocketAddress address, DeviceManager manager) throws IOException {
        if (address != null) {
            add(MetricsServer.start(address, metrics(manager)));
        }
    }

    /**
     * After a takeover, once the predecessor (which held both addresses) has exited: the metrics endpoint
     * (a failure is logged: the devices serve already) and this process's own handover socket.
     */
    void afterTakeover(DeviceHost host, InetSocketAddress metricsAddress, DeviceManager manager, Path control,
            ControlServer controlServer) {
        try {
            startMetrics(metricsAddress, manager);
        } catch (IOException e) {
            LOG.error("no metrics endpoint after the takeover: {}", e.getMessage());
        }
        offerHandover(host, control, controlServer);
    }

    /** Offers this process to a successor ({@link HotUpgrade#offer}); needs the control socket. */
    void offerHandover(DeviceHost host, Path control, ControlServer controlServer) {
        if (control != null) {
            AutoCloseable h = HotUpgrade.offer(host, control, controlServer, lifecycle);
            if (h != null) {
                add(h);
            }
        }
    }

    /** The metrics endpoint's content: every running device's snapshot, build, process and JVM metrics. */
    static Exposition metrics(DeviceManager manager) {
        return Exposition.of(JvhostRegistry.create(() -> manager.list().stream()
                .map(v -> new DeviceMetrics.Device(v.entry().spec().type(), v.snapshot())).toList(),
                Main.Version.commit()));
    }

    /** Closes the control socket and metrics endpoint, then the host (every device). Idempotent. */
    synchronized void stop(DeviceHost host) {
        for (int i = services.size() - 1; i >= 0; i--) {
            try {
                services.get(i).close();
            } catch (Exception e) {
                LOG.warn("closing {}: {}", services.get(i), e.toString());
            }
        }
        services.clear();
        host.close();
    }

    private synchronized void add(AutoCloseable s) {
        services.add(s);
    }
}
