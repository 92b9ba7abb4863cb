package org.jvhost.engine.session;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.Executor;
import org.jvhost.engine.event.Deadlines;
import org.jvhost.engine.device.DeviceRuntime;
import org.jvhost.engine.instrument.SessionTap;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.ProtocolException;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.engine.protocol.U64Layout;
import org.jvhost.engine.transport.Endpoint;
import org.jvhost.engine.transport.Message;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.VirtioFeatures;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The back-end side of one vhost-user connection. A control loop calls {@link #onReadable()} whenever
 * the socket has data, until the front-end goes away or breaks the protocol; {@link #close} then
 * returns the device to its initial state and releases every fd and mapping the connection brought.
 *
 * <h2>Never waiting for a worker</h2>
 * A request that touches running rings is validated here, then its worker commands are posted
 * ({@link WorkerPlan}); the control loop goes on serving other connections, and this one reads no
 * further request until the last command has come back and the reply has gone out. A device callback
 * that hangs therefore delays its own connection (and the queues on its worker), never the other
 * devices of the control loop.
 *
 * <h2>Failures</h2>
 * A malformed message closes the connection. A refused request (not implemented, feature not
 * negotiated, bad queue index, ring size or config range) gets a REPLY_ACK failure when the front-end
 * set NEED_REPLY and REPLY_ACK was negotiated; otherwise the spec leaves no way to say no, so the
 * connection is closed with an ERROR naming the request and the fault.
 *
 * <h2>Parts</h2>
 * This class reads, decodes and validates each request, and replies. The negotiated features are a
 * {@link FeatureNegotiation}, the guest memory a {@link MemoryTable}, the rings a {@link VringLifecycle},
 * the dirty-page log of a migration a {@link DirtyLogging}, the config space and its change notices a
 * {@link ConfigSpace}, the record of requests in flight an {@link InflightTracking};
 * what a request must do on the workers of running rings is collected in a {@link WorkerPlan}; the
 * replies go out through {@link Replies}; a hot upgrade's image and pause are the {@link SessionHandover}.
 */
public final class BackendSession {
    private static final Logger LOG = LoggerFactory.getLogger(BackendSession.class);
    /** Requests handled per readiness event before the control loop serves other connections. */
    private static final int MESSAGES_PER_TURN = 16;

    private final DeviceRuntime runtime;
    private final VhostUserDevice device;
    private final Endpoint endpoint;
    private final String name;
    private final Executor controlLoop;
    private final Runnable onAnswered;
    private final MemoryTable memory;
    private final VringLifecycle vrings;
    private final FeatureNegotiation negotiation;
    private final DirtyLogging logging;
    private final ConfigSpace config;
    private final InflightTracking inflight;
    private final Replies replies;
    private final SessionHandover handover;
    /** Sees every request and reply: the trace, strict mode and injected faults ({@link org.jvhost.engine.instrument}). */
    private final SessionTap tap;

    private int status;
    /** The request waiting for its workers, or null. */
    private WorkerPlan pending;
    /** A request finished by its workers ended the connection (see {@link #isBroken()}). */
    private boolean broken;
    /** Set by {@link #close}: runs once the connection's fds and mappings are all released. */
    private Runnable onReleased;
    /** Set by {@link #close}: runs once the socket is closed. */
    private Runnable onSocketClosed;
    private boolean socketClosed;
    /** Requests replayed from a hot upgrade's image before the socket is read ({@link #replay}). */
    private final java.util.ArrayDeque<Message> replay = new java.util.ArrayDeque<>();

    /**
     * @param controlLoop runs a task on the connection's control loop (worker completions come back through it)
     * @param onAnswered  called on the control loop after a request that waited for its workers was
     *                    answered: reading may resume, or the connection has {@linkplain #isBroken() broken}
     */
    public BackendSession(DeviceRuntime runtime, Endpoint endpoint, Executor controlLoop, Runnable onAnswered) {
        this.runtime = runtime;
        this.device = runtime.device();
        this.endpoint = endpoint;
        this.name = runtime.name();
        this.controlLoop = controlLoop;
        this.onAnswered = onAnswered;
        this.memory = new MemoryTable(runtime);
        this.logging = new DirtyLogging(name);
        this.tap = runtime.instrument().open(device.deviceType());
        this.vrings = new VringLifecycle(runtime, memory, logging, tap);
        this.negotiation = new FeatureNegotiation(device);
        this.config = new ConfigSpace(runtime, controlLoop);
        this.inflight = new InflightTracking(runtime);
        this.vrings.setInflight(inflight);
        this.replies = new Replies(name, endpoint, tap, negotiation, inflight);
        this.handover = new SessionHandover(name, controlLoop, negotiation, memory, vrings, logging, config, inflight,
                () -> status, this::suspendDevice);
        // a data-path fault ends the connection from a worker: as a request that broke it would
        tap.onDrop(() -> controlLoop.execute(() -> {
            broken = true;
            onAnswered.run();
        }));
    }

    /**
     * Handles the requests that have arrived, without waiting for more: a request split over several
     * reads stays buffered in the endpoint until its last byte comes. Stops after a request that must
     * wait for workers: vhost-user is strictly request/reply, so the next request is read only after
     * this one was answered ({@link #awaitingWorkers()}). Runs on the connection's control loop, like
     * every other method here.
     *
     * @return false if the connection has ended (the front-end left, or broke the protocol); the caller
     *         then calls {@link #close}
     */
    public boolean onReadable() {
        // a bounded batch, so a chatty front-end cannot starve the loop's other connections; the
        // level-triggered socket brings the loop back for the rest
        for (int i = 0; i < MESSAGES_PER_TURN && pending == null && !endpoint.hasUnsent(); i++) {
            Message m = replay.poll();
            if (m != null) {
                if (!serve(m)) {
                    LOG.error("{}: the connection handed over by the previous jvhost cannot be restored ({} "
                            + "failed); closing it, the front-end reconnects", name, m.name());
                    return false;
                }
                continue;
            }
            try {
                m = endpoint.receive();
            } catch (Endpoint.ClosedException e) {
                LOG.info("{}: front-end disconnected", name);
                return false;
            } catch (ProtocolException e) {
                LOG.error("{}: malformed message, closing the connection: {}", name, e.getMessage());
                return false;
            } catch (IOException e) {
                LOG.info("{}: connection ended: {}", name, e.getMessage());
                return false;
            }
            if (m == null) {
                return true;
            }
            if (!tap.received(m)) {
                m.closeFds();
                return false;
            }
            if (!serve(m)) {
                return false;
            }
        }
        return true;
    }

    // ---- hot upgrade (org.jvhost.engine.server.Handover) ------------------------------------------

    /**
     * Whether the connection is between two requests: none waits for workers, no reply is unsent, no
     * request is half read. Only then can it be paused and handed over.
     */
    public boolean betweenRequests() {
        return pending == null && !endpoint.hasUnsent() && !endpoint.inMessage() && replay.isEmpty();
    }

    /** The connection's part in a hot upgrade: its image, the pause of its rings. */
    public SessionHandover handover() {
        return handover;
    }

    /**
     * A hot upgrade: {@code requests} (a {@link SessionImage} the previous process sent) are served before
     * anything is read from the socket, without replies, and bypassing the trace and strict mode (the
     * front-end never sent them to us). One that fails ends the connection.
     */
    public void replay(java.util.List<Message> requests) {
        replay.addAll(requests);
    }

    /**
     * A two-phase hot upgrade: serves {@code requests} (the previous process's {@link SessionImage.Part#SETUP})
     * at once, as {@link #replay} would later. No ring runs yet, so none of them waits for a worker.
     *
     * @return null, or the request that failed (the rest are closed; the caller ends the connection)
     */
    public String restore(java.util.List<Message> requests) {
        String failed = null;
        for (Message m : requests) {
            if (failed != null) {
                m.closeFds();
            } else if (!serve(m) || pending != null) {
                failed = m.name();
            }
        }
        return failed;
    }

    /** Whether replayed requests remain to be served; the caller then calls {@link #onReadable()} again. */
    public boolean replayPending() {
        return !replay.isEmpty();
    }

    /** Whether a request waits for workers: until it is answered, nothing more is read. */
    public boolean awaitingWorkers() {
        return pending != null;
    }

    /** Whether a request answered after its workers finished ended the connection; the caller closes it. */
    public boolean isBroken() {
        return broken;
    }

    /**
     * Sends the rest of a reply the socket had no room for; once it is sent, requests are read again.
     *
     * @return false if the connection has ended (the socket failed); the caller then calls {@link #close}
     */
    public boolean onWritable() {
        try {
            endpoint.flush();
            return true;
        } catch (IOException e) {
            LOG.info("{}: cannot send a reply: {}", name, e.getMessage());
            return false;
        }
    }

    /**
     * Whether part of a reply waits for the front-end to read (nothing more is read until it is sent).
     * The caller watches the socket for room then, and cuts off a front-end that never reads.
     */
    public boolean replyUnsent() {
        return endpoint.hasUnsent();
    }

    /** When the unsent reply was made ({@link System#nanoTime()}); valid while {@link #replyUnsent()}. */
    public long replyUnsentSinceNanos() {
        return endpoint.unsentSinceNanos();
    }

    /** Whether part of a request has arrived and the rest has not (for the partial-message deadline). */
    public boolean inMessage() {
        return endpoint.inMessage();
    }

    /** When the first bytes of the incomplete request came ({@link System#nanoTime()}); valid while {@link #inMessage()}. */
    public long messageStartedNanos() {
        return endpoint.messageStartedNanos();
    }

    /**
     * Ends the connection without waiting for any worker. Every ring stops first (after the request in
     * flight, if any, has finished), and only then does the socket close: a front-end that sees the
     * connection end takes each ring's used index in guest memory for where the ring stopped (QEMU 7.2
     * does, since it can no longer ask GET_VRING_BASE), so a used entry a worker wrote after the close
     * would hand a buffer back twice on the next connection (a Linux guest logs "input.0:id 5 is not a
     * head" and gives the queue up). Then the device resets and the fds and mappings are released as
     * the workers confirm. {@code socketClosed} runs when the socket closes, {@code released} once
     * everything is released, both on the control loop. A worker that never confirms keeps the socket
     * open until {@link #closeSocket()}; memory a hanging callback may still read stays mapped until
     * that callback returns. Idempotent.
     */
    public void close(Runnable socketClosed, Runnable released) {
        if (onReleased != null) {
            return;
        }
        onReleased = released;
        onSocketClosed = socketClosed;
        tap.closed("connection closed");
        replay.forEach(Message::closeFds);
        replay.clear();
        if (pending == null) {
            release();
        }
    }

    /** Closes the socket now, whether or not the rings have stopped (for a worker that hangs). Idempotent. */
    public void closeSocket() {
        if (socketClosed) {
            return;
        }
        socketClosed = true;
        endpoint.close();
        if (onSocketClosed != null) {
            onSocketClosed.run();
        }
    }

    /** Whether the socket is closed ({@link #close} closes it once the rings have stopped). */
    public boolean socketClosed() {
        return socketClosed;
    }

    private void release() {
        WorkerPlan plan = new WorkerPlan(name);
        vrings.stopAll(plan);
        plan.then(this::closeSocket);
        reset(false, plan); // the rings are stopped: this resets the device and releases the rest
        plan.execute(controlLoop, () -> {
            if (plan.failure() != null) {
                LOG.error("{}: {}", name, plan.failure().getMessage());
            }
            onReleased.run();
        });
    }

    /** Handles one request; false if the connection must end. */
    private boolean serve(Message m) {
        WorkerPlan plan = new WorkerPlan(name);
        ByteBuffer reply;
        try {
            tap.refuse(m);
            reply = dispatch(m, plan);
        } catch (ProtocolException e) {
            plan.fail(e);
            reply = null;
        } finally {
            m.closeFds();
        }
        long delayMs = tap.replyDelayMs(m);
        if (!plan.needsWorkers() && delayMs == 0) {
            plan.execute(controlLoop, () -> { }); // control-thread steps only: done on return
            return replies.answer(m, plan, reply);
        }
        pending = plan;
        ByteBuffer computed = reply;
        plan.execute(controlLoop, () -> Deadlines.after(delayMs, controlLoop, () -> answered(m, plan, computed)));
        return true;
    }

    /** The workers have done their part of {@code m}. Control loop. */
    private void answered(Message m, WorkerPlan plan, ByteBuffer computed) {
        pending = null;
        if (onReleased != null) {
            release(); // the front-end left meanwhile
            return;
        }
        broken = !replies.answer(m, plan, computed);
        onAnswered.run();
    }

    /**
     * One arm per request; returns the reply payload, or null for requests without one or whose reply
     * {@code plan} computes once the workers have done their part.
     */
    private ByteBuffer dispatch(Message m, WorkerPlan plan) throws ProtocolException {
        FrontendRequest r = m.request();
        ByteBuffer p = m.payload();
        if (r == null) {
            throw ProtocolException.failed("request code " + Integer.toUnsignedString(m.header().request())
                    + " is not defined by the vhost-user spec");
        }
        switch (r) {
            case GET_FEATURES: return U64Layout.of(negotiation.offered());
            case SET_FEATURES: setFeatures(U64Layout.get(p), plan); return null;
            case SET_OWNER: return null; // one front-end per connection: nothing to record
            case RESET_OWNER: reset(true, plan); return null;
            case SET_MEM_TABLE: memory.setTable(m, vrings.running(), plan); return null;
            case SET_LOG_BASE: negotiation.require(ProtocolFeatures.LOG_SHMFD, r); return logging.setBase(m, memory.memory(), vrings.started(), plan);
            case SET_LOG_FD: return null; // the shared log (LOG_SHMFD) needs no such fd; DPDK ignores it too
            case SET_VRING_NUM: vrings.setNum(p); return null;
            case SET_VRING_ADDR: vrings.setAddr(p, plan); return null;
            case SET_VRING_BASE: vrings.setBase(p); return null;
            case GET_VRING_BASE: vrings.getBase(p, plan, this::suspendDevice); return null;
            case SET_VRING_KICK: vrings.setKick(m, plan); return null;
            case SET_VRING_CALL: vrings.setCall(m, plan); return null;
            case SET_VRING_ERR: vrings.setErr(m, plan); return null;
            case GET_PROTOCOL_FEATURES: return U64Layout.of(negotiation.offeredProtocol());
            case SET_PROTOCOL_FEATURES: negotiation.ackProtocol(U64Layout.get(p)); return null;
            case GET_QUEUE_NUM: negotiation.require(ProtocolFeatures.MQ, r); return U64Layout.of(device.maxQueues());
            case SET_VRING_ENABLE: vrings.setEnable(p, plan); return null;
            case GET_CONFIG: negotiation.require(ProtocolFeatures.CONFIG, r); return config.get(p);
            case SET_CONFIG: negotiation.require(ProtocolFeatures.CONFIG, r); config.set(p); return null;
            case SET_BACKEND_REQ_FD: negotiation.require(ProtocolFeatures.BACKEND_REQ, r); config.setChannel(m, negotiation.has(ProtocolFeatures.REPLY_ACK)); return null;
            case GET_INFLIGHT_FD: negotiation.require(ProtocolFeatures.INFLIGHT_SHMFD, r); return inflight.get(p, vrings.firstStarted(), plan);
            case SET_INFLIGHT_FD: negotiation.require(ProtocolFeatures.INFLIGHT_SHMFD, r); inflight.set(m, vrings.firstStarted(), plan); return null;
            case RESET_DEVICE: negotiation.require(ProtocolFeatures.RESET_DEVICE, r); reset(true, plan); return null;
            case GET_MAX_MEM_SLOTS: negotiation.require(ProtocolFeatures.CONFIGURE_MEM_SLOTS, r); return U64Layout.of(MemoryTable.MAX_MEM_SLOTS);
            case ADD_MEM_REG: negotiation.require(ProtocolFeatures.CONFIGURE_MEM_SLOTS, r); memory.add(m, vrings.running(), plan); return null;
            case REM_MEM_REG: negotiation.require(ProtocolFeatures.CONFIGURE_MEM_SLOTS, r); memory.remove(p, vrings.running(), plan); return null;
            case SEND_RARP: negotiation.require(ProtocolFeatures.RARP, r); announce(p); return null;
            case SET_STATUS: negotiation.require(ProtocolFeatures.STATUS, r); status = (int) (U64Layout.get(p) & 0xff); return null;
            case GET_STATUS: negotiation.require(ProtocolFeatures.STATUS, r); return U64Layout.of(status);
            default:
                throw ProtocolException.failed(r + " is not implemented by jvhost (its feature is never offered)");
        }
    }

    // ---- features -------------------------------------------------------------------------------

    private void setFeatures(long features, WorkerPlan plan) throws ProtocolException {
        negotiation.ack(features, vrings.firstStarted());
        vrings.setFeatures(features);
        runtime.setNegotiatedFeatures(features);
        logging.setFeatures(features, vrings.started(), plan);
        if ((features & VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES) == 0) {
            vrings.enableAll(plan);
        }
    }

    // ---- migration ------------------------------------------------------------------------------

    /**
     * SEND_RARP: the guest migrated here and did not negotiate GUEST_ANNOUNCE, so the device announces it.
     * Spec: "The first 6 bytes of the payload contain the mac address of the guest to allow the vhost
     * user back-end to construct and broadcast the fake RARP."
     */
    private void announce(ByteBuffer p) {
        byte[] mac = new byte[6];
        p.get(0, mac);
        try {
            device.announce(mac);
        } catch (RuntimeException e) {
            LOG.warn("{}: SEND_RARP: the device failed to announce the guest", name, e);
        }
    }

    // ---- reset ----------------------------------------------------------------------------------

    /**
     * Back to the initial state: every ring stopped, device reset, memory unmapped, every fd closed.
     * RESET_OWNER/RESET_DEVICE keep the negotiated protocol features: QEMU negotiates them once per
     * connection and keeps sending NEED_REPLY afterwards, so forgetting REPLY_ACK would hang it. A
     * disconnect ({@code keepProtocol} false) forgets everything.
     */
    private void reset(boolean keepProtocol, WorkerPlan plan) {
        vrings.stopAll(plan);
        plan.then(() -> {
            try {
                device.reset();
            } catch (RuntimeException e) {
                LOG.error("{}: device reset failed", name, e);
            }
            runtime.clearFailure();
        });
        memory.clear(plan);
        logging.clear(plan);
        inflight.clear(plan);
        if (!keepProtocol) {
            config.close();
        }
        negotiation.reset(keepProtocol);
        vrings.setFeatures(0);
        runtime.setNegotiatedFeatures(0);
        status = 0;
    }

    private void suspendDevice() {
        try {
            device.suspend();
        } catch (RuntimeException e) {
            LOG.warn("{}: device suspend failed", name, e);
        }
    }
}
