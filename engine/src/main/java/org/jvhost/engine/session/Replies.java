package org.jvhost.engine.session;

import java.io.IOException;
import java.nio.ByteBuffer;
import org.jvhost.engine.instrument.SessionTap;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.Payloads;
import org.jvhost.engine.protocol.ProtocolException;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.engine.protocol.U64Layout;
import org.jvhost.engine.transport.Endpoint;
import org.jvhost.engine.transport.Message;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How a {@link BackendSession} answers a request it has done: with its reply, the REPLY_ACK the front-end
 * asked for, a refusal, or by ending the connection when the spec leaves no way to say no. Every reply
 * leaves through here, past the instrument's {@link SessionTap}. Control thread only.
 */
final class Replies {
    private static final Logger LOG = LoggerFactory.getLogger(BackendSession.class);

    private final String name;
    private final Endpoint endpoint;
    private final SessionTap tap;
    private final FeatureNegotiation negotiation;
    /** GET_INFLIGHT_FD's reply carries the region's memfd. */
    private final InflightTracking inflight;

    Replies(String name, Endpoint endpoint, SessionTap tap, FeatureNegotiation negotiation, InflightTracking inflight) {
        this.name = name;
        this.endpoint = endpoint;
        this.tap = tap;
        this.negotiation = negotiation;
        this.inflight = inflight;
    }

    /** Replies to {@code m} (or refuses it, or ends the connection); false if the connection must end. */
    boolean answer(Message m, WorkerPlan plan, ByteBuffer computed) {
        try {
            return reply(m, plan, computed);
        } catch (IOException e) {
            LOG.info("{}: cannot reply to {}: {}", name, m.name(), e.getMessage());
            return false;
        }
    }

    private boolean reply(Message m, WorkerPlan plan, ByteBuffer computed) throws IOException {
        int code = m.header().request();
        boolean ackWanted = m.header().needReply();
        ProtocolException e = plan.failure();
        if (e != null) {
            if (m.request() == FrontendRequest.GET_CONFIG && !e.isMalformed()) {
                // spec, GET_CONFIG: "vhost-user back-end uses zero length of payload to indicate an error"
                // (an 8-byte ack would be read as config bytes, and the request has its own reply)
                LOG.warn("{}: {} refused: {}", name, m.name(), e.getMessage(), e.getCause());
                send(code, Payloads.allocate(0));
                return true;
            }
            if (ackWanted && negotiation.has(ProtocolFeatures.REPLY_ACK)) {
                LOG.warn("{}: {} refused: {}", name, m.name(), e.getMessage(), e.getCause());
                send(code, U64Layout.of(1));
                return true;
            }
            LOG.error("{}: {} failed and the front-end did not ask for a REPLY_ACK, closing the connection: {}",
                    name, m.name(), e.getMessage(), e.getCause());
            return false;
        }
        LOG.debug("{}: {} done", name, m.header());
        ByteBuffer reply = computed != null ? computed : plan.replyPayload();
        if (reply != null) {
            send(code, reply);
        } else if (ackWanted && negotiation.has(ProtocolFeatures.REPLY_ACK)) {
            // spec: with REPLY_ACK and NEED_REPLY, every request without a reply of its own gets u64 0 on success
            send(code, U64Layout.of(0));
        }
        return true;
    }

    /** Sends a reply to request {@code code}; every reply leaves through here, past the {@link #tap}. */
    private void send(int code, ByteBuffer payload) throws IOException {
        try {
            endpoint.reply(code, tap.sent(code, payload), inflight.replyFd()); // GET_INFLIGHT_FD's memfd, or none
        } finally {
            inflight.closeReplyFd();
        }
    }
}
