package org.jvhost.engine.session;

import com.sun.jna.Memory;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.jvhost.engine.protocol.BackendRequest;
import org.jvhost.engine.protocol.MessageHeader;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The back-end request channel of one connection (SET_BACKEND_REQ_FD): a socket on which jvhost sends
 * requests to the front-end, today CONFIG_CHANGE_MSG, and reads their REPLY_ACK.
 *
 * <h2>Never waiting</h2>
 * Everything runs on the connection's control loop and nothing waits there: the request is sent with a
 * non-blocking {@code send}, and its reply is looked for every {@link #POLL_MS} on a timer until
 * {@link #REPLY_TIMEOUT_MS}. Waiting for it inline would deadlock besides: QEMU answers a
 * CONFIG_CHANGE_MSG only after its GET_CONFIG on the main channel, which this same loop must serve.
 *
 * <h2>Bounded</h2>
 * Notices coalesce: at most one is in flight and one more waits, since the front-end re-reads the whole
 * config space for either. A front-end that leaves a request unread or unanswered for
 * {@link #REPLY_TIMEOUT_MS}, or answers with anything but the spec's 20-byte reply to it, loses the
 * channel: it is closed with a log line naming what went wrong (a late or garbled reply would leave the
 * stream misaligned for good). Notices then return false; the driver reads the config space anew when it
 * next starts the device.
 *
 * <pre>
 * request: | u32 request = 2 | u32 flags = 1 (| NEED_REPLY 0x8) | u32 size = 0 |
 * reply:   | u32 request = 2 | u32 flags = 1 | REPLY 0x4        | u32 size = 8 | u64 0 (ok) or non-zero |
 * </pre>
 * One fd: the socket, closed by {@link #close()}.
 */
final class BackendChannel {
    private static final Logger LOG = LoggerFactory.getLogger(BackendChannel.class);
    static final long REPLY_TIMEOUT_MS = 1000;
    static final long POLL_MS = 5;
    private static final int REPLY_SIZE = MessageHeader.SIZE + 8;

    /** Counts the time of reply polls and posts them to their control loops; one daemon thread for all. */
    private static final class Timer {
        static final ScheduledExecutorService INSTANCE = new ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, "jvhost-backend-req");
            t.setDaemon(true);
            return t;
        });
    }

    private final String name;
    private final Executor loop;
    private final boolean replyAck;
    private final AtomicBoolean wanted = new AtomicBoolean();
    /** Native scratch: the request to send, then the reply as it arrives. Control loop only. */
    private final Memory buf = new Memory(REPLY_SIZE);
    private int fd;
    private int sent;
    private int received;
    private boolean sending;
    private boolean awaitingReply;
    private long deadline;
    private volatile boolean closed;

    /**
     * @param fd       the socket from SET_BACKEND_REQ_FD, now owned here
     * @param replyAck REPLY_ACK was negotiated: each request asks for a reply (NEED_REPLY)
     */
    BackendChannel(String name, int fd, Executor loop, boolean replyAck) {
        this.name = name;
        this.fd = fd;
        this.loop = loop;
        this.replyAck = replyAck;
    }

    /**
     * Queues a CONFIG_CHANGE_MSG; any thread. False if the channel is closed.
     */
    boolean configChanged() {
        if (isClosed()) {
            return false;
        }
        if (!wanted.getAndSet(true)) {
            loop.execute(this::pump);
        }
        return true;
    }

    boolean isClosed() {
        return closed;
    }

    /** Sends the wanted notice unless one is on its way. Control loop. */
    private void pump() {
        if (closed || sending || awaitingReply || !wanted.getAndSet(false)) {
            return;
        }
        int flags = MessageHeader.VERSION | (replyAck ? MessageHeader.NEED_REPLY : 0);
        buf.setInt(0, BackendRequest.CONFIG_CHANGE_MSG.code());
        buf.setInt(4, flags);
        buf.setInt(8, 0);
        sent = 0;
        sending = true;
        deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(REPLY_TIMEOUT_MS);
        step();
    }

    /** Sends what is left of the request, then reads what has come of the reply. Control loop. */
    private void step() {
        if (closed) {
            return;
        }
        try {
            if (sending && !sendRest()) {
                return;
            }
            if (awaitingReply && !receiveRest()) {
                return;
            }
        } catch (NativeException e) {
            fail("the socket failed: " + e.getMessage());
            return;
        }
        pump(); // done: a notice that came meanwhile goes now
    }

    /** True once the request is out (and its reply, if any, awaited); false if waiting or closed. */
    private boolean sendRest() throws NativeException {
        while (sent < MessageHeader.SIZE) {
            long n = LinuxSys.sendNow(fd, Memory.nativeValue(buf) + sent, MessageHeader.SIZE - sent);
            if (n < 0) {
                return later("send CONFIG_CHANGE_MSG: the front-end does not read its back-end channel");
            }
            sent += (int) n;
        }
        sending = false;
        LOG.info("{}: config change sent to the front-end", name);
        if (replyAck) {
            awaitingReply = true;
            received = 0;
        }
        return true;
    }

    /** True once the whole reply has come and is right; false if waiting or closed. */
    private boolean receiveRest() throws NativeException {
        while (received < REPLY_SIZE) {
            long n = LinuxSys.receiveNow(fd, Memory.nativeValue(buf) + received, REPLY_SIZE - received);
            if (n == 0) {
                fail("the front-end closed the channel before replying to CONFIG_CHANGE_MSG");
                return false;
            }
            if (n < 0) {
                return later("no reply to CONFIG_CHANGE_MSG");
            }
            received += (int) n;
        }
        awaitingReply = false;
        return checkReply();
    }

    private boolean checkReply() {
        int request = buf.getInt(0);
        int flags = buf.getInt(4);
        int size = buf.getInt(8);
        if (request != BackendRequest.CONFIG_CHANGE_MSG.code() || flags != (MessageHeader.VERSION | MessageHeader.REPLY)
                || size != 8) {
            fail(String.format("reply to CONFIG_CHANGE_MSG is malformed: request %d flags 0x%x size %d "
                    + "(expected 2, 0x5, 8)", request, flags, size));
            return false;
        }
        long status = buf.getLong(MessageHeader.SIZE);
        if (status != 0) {
            LOG.warn("{}: the front-end reports failure {} for CONFIG_CHANGE_MSG", name, status);
        }
        return true;
    }

    /** Tries again after {@link #POLL_MS}, or gives the channel up past the deadline; returns false. */
    private boolean later(String what) {
        if (System.nanoTime() - deadline > 0) {
            fail(what + " within " + REPLY_TIMEOUT_MS + " ms");
        } else {
            Timer.INSTANCE.schedule(() -> loop.execute(this::step), POLL_MS, TimeUnit.MILLISECONDS);
        }
        return false;
    }

    private void fail(String why) {
        LOG.warn("{}: back-end request channel closed: {}; config changes are no longer announced on this "
                + "connection", name, why);
        close();
    }

    /** Closes the socket; idempotent. Control loop. */
    void close() {
        if (!closed) {
            closed = true;
            LinuxSys.closeQuietly(fd);
            fd = -1;
        }
    }
}
