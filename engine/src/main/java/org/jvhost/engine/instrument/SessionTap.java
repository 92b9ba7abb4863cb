package org.jvhost.engine.instrument;

import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.MessageHeader;
import org.jvhost.engine.protocol.ProtocolException;
import org.jvhost.engine.transport.Message;
import org.jvhost.engine.virtq.HostQueue;
import org.jvhost.engine.virtq.SplitQueue;
import org.jvhost.spi.Virtqueue;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Where one connection's messages pass the instrument: the session calls {@link #received} for each
 * request before handling it, {@link #refuse} as it handles it, {@link #sent} for each reply, and
 * {@link #closed} at the end. The tap feeds the strict checks and, while tracing is on, writes each
 * message to the trace; only a planned fault ({@link FaultPlan}) drops the connection, refuses a request
 * or changes a reply. Control loop only.
 */
public final class SessionTap {
    private static final Logger LOG = LoggerFactory.getLogger(SessionTap.class);

    private final Instrument instrument;
    private final int conn;
    private final int deviceType;
    private final SpecChecker checker;
    /** The connection's faults, or null. */
    private final FaultInjector faults;
    /** The connection's data-path faults, or null. */
    private final DataPathFaults dataFaults;
    /** The data-path rules reported so far, as {@code queue << 8 | rule}: each once per queue. */
    private final Set<Integer> ringReports = ConcurrentHashMap.newKeySet();
    /** Ends the connection (set by the session); a data-path fault calls it from a worker. */
    private volatile Runnable dropConnection = () -> { };

    SessionTap(Instrument instrument, int conn, int deviceType, FaultPlan plan, FaultInjector.Reporter injected) {
        this.instrument = instrument;
        this.conn = conn;
        this.deviceType = deviceType;
        this.faults = plan.any() ? new FaultInjector(plan, conn, injected) : null;
        DataPathFaults data = plan.dataPath() ? new DataPathFaults(plan, conn, injected, () -> dropConnection.run())
                : null;
        this.dataFaults = data != null && data.any() ? data : null;
        this.checker = new SpecChecker((rule, detail) -> instrument.report(conn, rule, detail), deviceType);
    }

    /** How a data-path fault ends the connection: {@code drop} is called on a worker and must post. */
    public void onDrop(Runnable drop) {
        this.dropConnection = drop;
    }

    /**
     * The queue to hand the device for a started ring: {@code queue} itself, or while strict mode or a
     * data-path fault is on, an {@link InstrumentedQueue} around it. Worker of the ring. Strict mode checks
     * both layouts; a packed ring for the rules that apply to it (see {@link RingChecks}), which a log
     * line says when the ring starts. Data-path faults apply to both layouts.
     *
     * @param transmit whether the device calls it a transmit queue
     * @param rekick   posts a kick of the ring to its worker (when a stall ends)
     */
    public Virtqueue queueView(HostQueue queue, boolean transmit, Runnable rekick) {
        boolean checked = instrument.strict();
        if (!checked && dataFaults == null) {
            return queue;
        }
        int index = queue.index();
        if (checked && !(queue instanceof SplitQueue)) {
            LOG.info("strict: queue {} is a packed ring: its driver is checked for {} and {}; {} and {} are "
                    + "split-ring rules (no avail index); {} (a buffer id reused while outstanding), ids out of range, "
                    + "over-long chains and flags that lie about the wrap counter break the ring itself, with a WARN",
                    index, SpecRule.TX_DEVICE_WRITABLE.id(), SpecRule.KICK_WHILE_SUPPRESSED.id(),
                    SpecRule.AVAIL_IDX_BACKWARDS.id(), SpecRule.AVAIL_IDX_TOO_FAR.id(), SpecRule.BUFFER_REUSED.id());
        }
        RingChecks checks = !checked ? null : new RingChecks(queue, transmit, new RingChecks.Reporter() {
            @Override
            public void report(SpecRule rule, String detail) {
                if (ringReports.add(index << 8 | rule.ordinal())) {
                    instrument.report(conn, rule, detail);
                }
            }

            @Override
            public void extraKicks(long kicks) {
                instrument.extraKicks(kicks);
            }
        });
        return new InstrumentedQueue(queue, transmit, checks, dataFaults, rekick);
    }

    /**
     * A request has arrived, with its fds (not yet taken by the handler).
     *
     * @return false if an injected fault drops the connection now
     */
    public boolean received(Message m) {
        FrontendRequest r = m.request();
        try {
            checker.request(r, m.payload().duplicate().order(MessageHeader.ORDER));
        } catch (RuntimeException e) {
            LOG.debug("strict check of {} failed", m.name(), e);
        }
        ProtocolTrace t = instrument.trace();
        if (t != null) {
            Map<String, Object> line = line("in", m.name(), m.header());
            line.put("fds", m.fdCount());
            line.put("payload", decode(() -> MessageDecoder.request(r, m.payload().duplicate().order(MessageHeader.ORDER),
                    deviceType)));
            t.write(line);
        }
        return faults == null || faults.received(m) == FaultInjector.Verdict.SERVE;
    }

    /**
     * Throws the refusal an injected fault plans for {@code m} (the session answers it as any refused
     * request: a REPLY_ACK failure, or the end of the connection if the front-end asked for none).
     */
    public void refuse(Message m) throws ProtocolException {
        if (faults != null) {
            faults.refuse(m);
        }
    }

    /**
     * How long an injected fault holds the answer to {@code m}, just handled (0: none). The session
     * holds it without blocking its control thread: it reads nothing more meanwhile and answers from a
     * timer.
     */
    public long replyDelayMs(Message m) {
        return faults == null ? 0 : faults.replyDelayMs(m);
    }

    /**
     * A reply to request {@code code} with {@code payload} (position 0 to limit) is about to leave.
     *
     * @return the payload to send: {@code payload}, or what an injected fault puts in its place
     */
    public ByteBuffer sent(int code, ByteBuffer payload) {
        if (faults != null && payload != null) {
            payload = faults.reply(code, payload);
        }
        ByteBuffer p = payload == null ? ByteBuffer.allocate(0) : payload.duplicate().order(MessageHeader.ORDER);
        try {
            checker.reply(code, p.duplicate().order(MessageHeader.ORDER));
        } catch (RuntimeException e) {
            LOG.debug("strict check of the reply to {} failed", FrontendRequest.nameOf(code), e);
        }
        ProtocolTrace t = instrument.trace();
        if (t != null) {
            Map<String, Object> line = line("out", FrontendRequest.nameOf(code), MessageHeader.reply(code, p.remaining()));
            line.put("payload", decode(() -> MessageDecoder.reply(code, p, deviceType)));
            t.write(line);
        }
        return payload;
    }

    /** The connection has ended, for {@code why}. */
    public void closed(String why) {
        ProtocolTrace t = instrument.trace();
        if (t != null) {
            Map<String, Object> line = new LinkedHashMap<>();
            line.put("time", Instant.now().toString());
            line.put("conn", conn);
            line.put("dir", "end");
            line.put("request", "DISCONNECT");
            line.put("reason", why);
            t.write(line);
        }
    }

    private Map<String, Object> line(String dir, String request, MessageHeader h) {
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("time", Instant.now().toString());
        line.put("conn", conn);
        line.put("dir", dir);
        line.put("request", request);
        line.put("flags", MessageDecoder.flags(h.flags()));
        line.put("size", h.size());
        return line;
    }

    private static Object decode(java.util.function.Supplier<Map<String, Object>> decoder) {
        try {
            return decoder.get();
        } catch (RuntimeException e) {
            return Map.of("undecodable", e.toString());
        }
    }
}
