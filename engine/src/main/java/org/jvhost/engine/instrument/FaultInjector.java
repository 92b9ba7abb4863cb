package org.jvhost.engine.instrument;

import java.nio.ByteBuffer;
import java.util.Random;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.ProtocolException;
import org.jvhost.engine.protocol.U64Layout;
import org.jvhost.engine.protocol.VringAddrLayout;
import org.jvhost.engine.protocol.VringStateLayout;
import org.jvhost.engine.transport.Message;

/**
 * One connection's faults, as a {@link FaultPlan} says. Every fault injected is reported (a WARN line
 * naming the fault, the connection and the request number, and the seed in random mode), so a failure
 * of the front-end can be tied to its cause and reproduced.
 */
final class FaultInjector {
    /**
     * Random mode's bounds, per request: 1 in 50 drops the connection (after at least 3 requests), 1 in
     * 20 waits 1-100 ms before the reply, 1 in 10 of the requests that ask for an ack is refused.
     */
    static final String RANDOM_BOUNDS = "per request: drop 1/50 (after request 3), delay 1-100 ms 1/20, "
            + "NACK 1/10 of NEED_REPLY requests";

    /** What to do with a request. */
    enum Verdict { SERVE, DROP }

    /** Reports one injected fault. */
    interface Reporter {
        void injected(String fault);
    }

    private final FaultPlan plan;
    private final int conn;
    private final Reporter reporter;
    private final Random random;
    private int messages;
    private long delayNext;

    FaultInjector(FaultPlan plan, int conn, Reporter reporter) {
        this.plan = plan;
        this.conn = conn;
        this.reporter = reporter;
        this.random = plan.seed() == null ? null : new Random(plan.seed() * 31 + conn);
    }

    /** A request arrived: whether the connection is dropped now. */
    Verdict received(Message m) {
        messages++;
        delayNext = plan.delayMs();
        if (conn == 1 && messages == plan.dropAfterMessage() || conn <= plan.dropSweep() && messages == conn) {
            reporter.injected("dropping the connection after request " + messages + " (" + m.name() + ")");
            return Verdict.DROP;
        }
        if (random != null) {
            int roll = random.nextInt(100);
            if (roll < 2 && messages > 3) {
                reporter.injected("random (seed " + plan.seed() + "): dropping the connection after request "
                        + messages + " (" + m.name() + ")");
                return Verdict.DROP;
            }
            if (roll >= 2 && roll < 7) {
                delayNext = 1 + random.nextInt(100);
            }
        }
        return Verdict.SERVE;
    }

    /**
     * Throws the refusal planned for request {@code m}, if any: a ring from {@code maxQueues} on, and for
     * a request that asks for an ack, a named request or random mode's NACK.
     */
    void refuse(Message m) throws ProtocolException {
        FrontendRequest r = m.request();
        if (r == null) {
            return;
        }
        int ring = ring(r, m.payload());
        if (plan.maxQueues() > 0 && ring >= plan.maxQueues()) {
            // as a back-end with that many queues: a REPLY_ACK failure, or without one the connection ends
            throw injected("refusing " + r + " for ring " + ring + ": only " + plan.maxQueues() + " queues");
        }
        if (!m.header().needReply() || !FaultPlan.nackable(r)) {
            return;
        }
        if (plan.nack().contains(r)) {
            throw injected("refusing " + r + " (request " + messages + ") with a REPLY_ACK failure");
        }
        if (random != null && random.nextInt(10) == 0) {
            throw injected("random (seed " + plan.seed() + "): refusing " + r + " (request " + messages
                    + ") with a REPLY_ACK failure");
        }
    }

    /** The reply to {@code code} as it leaves: GET_QUEUE_NUM lowered to {@code maxQueues}. */
    ByteBuffer reply(int code, ByteBuffer payload) {
        if (plan.maxQueues() > 0 && code == FrontendRequest.GET_QUEUE_NUM.code() && payload.remaining() == U64Layout.SIZE
                && U64Layout.get(payload) > plan.maxQueues()) {
            reporter.injected("GET_QUEUE_NUM answers " + plan.maxQueues() + " instead of " + U64Layout.get(payload));
            return U64Layout.of(plan.maxQueues());
        }
        return payload;
    }

    /**
     * How long to hold the answer to request {@code m}, which has just been handled, and whether it is
     * held at all: only a request that gets a reply (its own, or the REPLY_ACK it asked for) is delayed.
     */
    long replyDelayMs(Message m) {
        long ms = delayNext;
        delayNext = 0;
        FrontendRequest r = m.request();
        if (ms <= 0 || r == null || !m.header().needReply() && FaultPlan.nackable(r)) {
            return 0;
        }
        reporter.injected("delaying the reply to " + m.name() + " by " + ms + " ms");
        return ms;
    }

    private ProtocolException injected(String fault) {
        reporter.injected(fault);
        return ProtocolException.failed("fault injected: " + fault);
    }

    /** The ring index a ring request names, or -1. */
    private static int ring(FrontendRequest r, ByteBuffer p) {
        switch (r) {
            case SET_VRING_NUM: case SET_VRING_BASE: case GET_VRING_BASE: case SET_VRING_ENABLE:
                return VringStateLayout.index(p);
            case SET_VRING_ADDR:
                return VringAddrLayout.index(p);
            case SET_VRING_KICK: case SET_VRING_CALL: case SET_VRING_ERR:
                return (int) (U64Layout.get(p) & U64Layout.VRING_INDEX_MASK);
            default:
                return -1;
        }
    }
}
