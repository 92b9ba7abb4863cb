package org.jvhost.host.cli;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.jvhost.engine.server.HandoverLayout;
import org.jvhost.engine.server.Takeover;
import org.jvhost.host.control.ControlServer;
import org.jvhost.host.devices.DeviceHost;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code serve}'s part in a hot upgrade (README, "Hot upgrade"). The handover socket sits next to the
 * control socket ({@link HandoverLayout#socketFor}), so a successor started with the same arguments
 * plus {@code --takeover} finds its predecessor there.
 *
 * <ul>
 * <li>Every {@code serve} with a control socket {@linkplain #offer offers} itself: on a successor's
 *     HELLO it hands everything over and the process exits 0 ({@link Lifecycle#handedOver}).</li>
 * <li>{@code serve --takeover} {@linkplain #takeOver receives} the first phase before creating its
 *     devices, which then take over their sockets and connections (set up while the predecessor's rings
 *     still run); the control socket too. Once everything is created it {@linkplain #acknowledge
 *     completes} the takeover (the predecessor pauses its rings and sends where they stand) and
 *     acknowledges; the metrics endpoint and its own handover socket follow once the predecessor has
 *     exited (they are bound to addresses the predecessor holds till then).</li>
 * </ul>
 */
final class HotUpgrade {
    private static final Logger LOG = LoggerFactory.getLogger(HotUpgrade.class);
    /** How long the predecessor may take to pause everything and send it. */
    static final long RECEIVE_MS = 30_000;
    /** How long the predecessor may take to exit after the acknowledgement. */
    static final long EXIT_MS = 30_000;
    /** How long serve waits for the connections taken over to run again before it carries on. */
    static final long RUNNING_MS = 5_000;
    static final String CONTROL = "control";
    /**
     * A drill: hold the acknowledgement this many ms (JVM property), so an operator, or a test, can kill
     * the successor mid-handover and watch the running jvhost resume.
     */
    static final String HOLD_PROPERTY = "jvhost.takeover.hold-ms";

    private final DeviceHost host;
    private final Takeover takeover;

    private HotUpgrade(DeviceHost host, Takeover takeover) {
        this.host = host;
        this.takeover = takeover;
    }

    /**
     * Receives everything the jvhost with control socket {@code control} serves; {@code host} takes it
     * over as its devices are added.
     *
     * @throws IOException naming what failed (nobody listens, the running one refused...)
     */
    static HotUpgrade takeOver(DeviceHost host, Path control) throws IOException {
        Takeover t = Takeover.receive(HandoverLayout.socketFor(control.toAbsolutePath()), RECEIVE_MS);
        host.adopt(t);
        return new HotUpgrade(host, t);
    }

    /** The control socket the predecessor handed over, or -1. */
    int controlFd() {
        return takeover.takeService(CONTROL);
    }

    /**
     * Everything is created: the predecessor pauses its rings and sends the rest, then exits; the devices
     * taken over start serving, and
     * {@code afterPredecessor} runs on a thread of its own once the predecessor is gone.
     */
    void acknowledge(Runnable afterPredecessor) throws IOException {
        host.completeTakeover();
        long hold = Long.getLong(HOLD_PROPERTY, 0);
        if (hold > 0) {
            LOG.warn("holding the takeover {} ms before acknowledging it ({})", hold, HOLD_PROPERTY);
            try {
                Thread.sleep(hold);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while holding the takeover");
            }
        }
        takeover.acknowledge();
        awaitRunning(host.startAdopted());
        long pid = takeover.predecessorPid();
        takeover.close(); // the predecessor exits now, its teardown no longer competing with the rings' restart
        Thread t = new Thread(() -> {
            try {
                ProcessHandle.of(pid).ifPresent(p -> {
                    try {
                        p.onExit().get(EXIT_MS, TimeUnit.MILLISECONDS);
                    } catch (Exception e) {
                        LOG.warn("the previous jvhost (pid {}) has not exited: {}", pid, e.toString());
                    }
                });
                afterPredecessor.run();
            } catch (RuntimeException e) {
                LOG.error("after the takeover", e);
            }
        }, "jvhost-takeover");
        t.setDaemon(true);
        t.start();
    }

    /**
     * Waits (bounded) until the connections taken over run again: what this thread does next (log, signal
     * handlers, the watchdog, a thread waiting for the predecessor's exit) would otherwise compete with their
     * restart for the CPU, inside the traffic gap.
     */
    private static void awaitRunning(CompletableFuture<Void> running) {
        try {
            running.get(RUNNING_MS, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException | TimeoutException e) {
            LOG.debug("not every connection taken over runs again: {}", e.toString()); // each logged its reason
        }
    }

    /** The takeover failed before the acknowledgement: the predecessor resumes once the link closes. */
    void abandon() {
        takeover.close();
    }

    /**
     * Offers {@code host} to a successor on the handover socket next to {@code control} (the control
     * socket itself included). A failure to listen there only costs hot upgrades: logged, null.
     */
    static AutoCloseable offer(DeviceHost host, Path control, ControlServer controlServer, Lifecycle lifecycle) {
        Path socket = HandoverLayout.socketFor(control.toAbsolutePath());
        try {
            return host.offerHandover(socket, () -> {
                try {
                    return controlServer == null ? Map.of() : Map.of(CONTROL, controlServer.listenerFd());
                } catch (IOException e) {
                    LOG.warn("the control socket is not handed over: {}", e.getMessage());
                    return Map.of();
                }
            }, lifecycle::handedOver);
        } catch (IOException e) {
            LOG.warn("no hot upgrades: cannot listen on {}: {}", socket, e.getMessage());
            return null;
        }
    }
}
