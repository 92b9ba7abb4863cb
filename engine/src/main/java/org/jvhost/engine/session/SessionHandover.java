package org.jvhost.engine.session;

import java.util.concurrent.Executor;
import java.util.function.IntSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One connection's part in a hot upgrade ({@code org.jvhost.engine.server.Handover}): whether it can be
 * handed over, its {@link SessionImage}, and the pause (or, if the upgrade is abandoned, the restart) of
 * its rings. The session's own side, replaying an image, is {@link BackendSession#replay} and
 * {@link BackendSession#restore}. Control thread only.
 */
public final class SessionHandover {
    private static final Logger LOG = LoggerFactory.getLogger(BackendSession.class);

    private final String name;
    private final Executor controlLoop;
    private final FeatureNegotiation negotiation;
    private final MemoryTable memory;
    private final VringLifecycle vrings;
    private final DirtyLogging logging;
    private final ConfigSpace config;
    private final InflightTracking inflight;
    /** The device status (SET_STATUS) the image carries. */
    private final IntSupplier status;
    private final Runnable suspendDevice;

    SessionHandover(String name, Executor controlLoop, FeatureNegotiation negotiation, MemoryTable memory,
            VringLifecycle vrings, DirtyLogging logging, ConfigSpace config, InflightTracking inflight,
            IntSupplier status, Runnable suspendDevice) {
        this.name = name;
        this.controlLoop = controlLoop;
        this.negotiation = negotiation;
        this.memory = memory;
        this.vrings = vrings;
        this.logging = logging;
        this.config = config;
        this.inflight = inflight;
        this.status = status;
        this.suspendDevice = suspendDevice;
    }

    /** Whether the connection logs dirty pages now (a live migration runs): it is not handed over then. */
    public boolean logging() {
        return logging.active();
    }

    /**
     * Pauses every started ring on its worker (as GET_VRING_BASE, without telling the front-end) and
     * suspends the device; {@code done} runs on the control loop then. Call only
     * {@link BackendSession#betweenRequests()}.
     */
    public void pause(Runnable done) {
        WorkerPlan plan = new WorkerPlan(name);
        vrings.pause(plan);
        plan.then(suspendDevice);
        plan.execute(controlLoop, done);
    }

    /**
     * What a {@link SessionImage} cannot carry yet, or null: the back-end channel (SET_BACKEND_REQ_FD) and
     * the inflight region (SET_INFLIGHT_FD). Such a connection is not handed over.
     */
    public String notInImage() {
        return config.hasChannel() ? "back-end channel (SET_BACKEND_REQ_FD)"
                : inflight.active() ? "inflight region (SET_INFLIGHT_FD)" : null;
    }

    /**
     * The connection as requests that rebuild it ({@link SessionImage}), or the {@code part} of them; its fds
     * stay ours. {@link SessionImage.Part#SETUP} while the rings run, the others once they are paused.
     */
    public SessionImage image(SessionImage.Part part) {
        return SessionImage.of(negotiation, memory, vrings, status.getAsInt(), part);
    }

    /** When the last of the started rings started on its worker ({@link System#nanoTime}), 0 if none runs. */
    public long lastRingStart() {
        long last = 0;
        for (QueueConfig q : vrings.started()) {
            last = last == 0 || q.startedNanos - last > 0 ? q.startedNanos : last;
        }
        return last;
    }

    /** The upgrade was abandoned: the paused rings start again where they stopped. */
    public void resume() {
        WorkerPlan plan = new WorkerPlan(name);
        vrings.unpause(plan);
        plan.execute(controlLoop, () -> {
            if (plan.failure() != null) {
                LOG.error("{}: rings do not restart after the abandoned upgrade: {}", name, plan.failure().getMessage());
            }
        });
    }
}
