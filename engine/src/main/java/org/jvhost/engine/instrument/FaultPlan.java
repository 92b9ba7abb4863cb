package org.jvhost.engine.instrument;

import java.util.EnumSet;
import java.util.Set;
import org.jvhost.engine.protocol.FrontendRequest;

/**
 * The faults a device injects to test how a front-end copes, each within what a real back-end may
 * legally do: it may go away at any moment, answer slowly, refuse a request through REPLY_ACK, and
 * support fewer queues than the front-end would like.
 *
 * @param dropAfterMessage close the first connection right after its N-th request arrived (0: never);
 *                         later connections are left alone, so a front-end that reconnects recovers
 * @param dropSweep        connections 1 to K are each closed right after request number K of their own
 *                         (connection 1 after its first request, connection 2 after its second...), 0:
 *                         none: one run of a reconnecting front-end meets a drop at every point of its
 *                         first K requests
 * @param nack             requests refused with a REPLY_ACK failure when the front-end asks for an ack
 *                         (without NEED_REPLY the spec leaves no way to say no, and they are served)
 * @param delayMs          how long each reply waits before it is sent (0: none); the connection reads
 *                         nothing more meanwhile, and the wait is a timer ({@link org.jvhost.engine.event.Deadlines}), never a
 *                         sleep of the control thread that also serves other devices
 * @param maxQueues        the queue count GET_QUEUE_NUM reports, and the rings refused from that index
 *                         on (0: the device's own)
 * @param seed             random mode's seed, or null for none: each request then has a small chance of
 *                         one of the faults above, and each connection of a data-path fault
 *                         ({@link FaultInjector#RANDOM_BOUNDS}, {@link DataPathFaults#RANDOM_BOUNDS})
 * @param dropAfterFrames  close the first connection once the device has returned N chains on its
 *                         transmit queues (N frames the front-end sent; 0: never). This is also the
 *                         "reset mid-traffic" a vhost-user back-end can do: see {@link DataPathFaults}
 * @param stallRx          on each queue that is not a transmit queue (RX), once per connection: after
 *                         it returned N chains, return none for a while (null: never)
 * @param stallTx          the same on each transmit queue (null: never)
 */
public record FaultPlan(int dropAfterMessage, int dropSweep, Set<FrontendRequest> nack, long delayMs, int maxQueues,
                        Long seed, long dropAfterFrames, Stall stallRx, Stall stallTx) {
    /** The longest reply delay accepted. */
    public static final long MAX_DELAY_MS = 5000;
    /** No fault. */
    public static final FaultPlan NONE = new FaultPlan(0, 0, Set.of(), 0, 0, null);

    /**
     * A stalled back-end: after a queue returned {@code afterChains} chains, it returns none for
     * {@code ms} (its buffers stay with the device, as with a back-end that is busy elsewhere), then
     * goes on where it stopped.
     */
    public record Stall(long afterChains, long ms) {
        /** The longest stall accepted. */
        public static final long MAX_MS = 60_000;

        public Stall {
            if (afterChains < 1 || ms < 1 || ms > MAX_MS) {
                throw new IllegalArgumentException("stall after " + afterChains + " chains for " + ms
                        + " ms: needs at least 1 chain and 1.." + MAX_MS + " ms");
            }
        }

        @Override
        public String toString() {
            return "after " + afterChains + " chains for " + ms + " ms";
        }
    }

    /** Control-path faults only. */
    public FaultPlan(int dropAfterMessage, int dropSweep, Set<FrontendRequest> nack, long delayMs, int maxQueues,
                     Long seed) {
        this(dropAfterMessage, dropSweep, nack, delayMs, maxQueues, seed, 0, null, null);
    }

    public FaultPlan {
        if (dropAfterMessage < 0 || dropSweep < 0 || maxQueues < 0 || dropAfterFrames < 0) {
            throw new IllegalArgumentException("negative message, frame or queue count");
        }
        if (delayMs < 0 || delayMs > MAX_DELAY_MS) {
            throw new IllegalArgumentException("reply delay " + delayMs + " ms is outside 0.." + MAX_DELAY_MS);
        }
        for (FrontendRequest r : nack) {
            if (!nackable(r)) {
                throw new IllegalArgumentException(r + " cannot be refused with a REPLY_ACK: its reply is its answer");
            }
        }
        nack = nack.isEmpty() ? Set.of() : Set.copyOf(EnumSet.copyOf(nack));
    }

    /**
     * Whether a REPLY_ACK failure is a legal answer to {@code r}: not for a request with a reply of its
     * own (GET_FEATURES, GET_VRING_BASE...), where an ack would be read as the answer; GET_CONFIG's
     * refusal is its zero-length reply (spec "GET_CONFIG").
     */
    public static boolean nackable(FrontendRequest r) {
        return !r.name().startsWith("GET_") || r == FrontendRequest.GET_CONFIG;
    }

    /** Whether any fault is planned. */
    public boolean any() {
        return dropAfterMessage > 0 || dropSweep > 0 || !nack.isEmpty() || delayMs > 0 || maxQueues > 0 || seed != null
                || dataPath();
    }

    /** Whether a data-path fault is planned (random mode may plan one): the rings are then instrumented. */
    public boolean dataPath() {
        return dropAfterFrames > 0 || stallRx != null || stallTx != null || seed != null;
    }
}
