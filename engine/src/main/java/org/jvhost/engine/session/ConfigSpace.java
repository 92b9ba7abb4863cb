package org.jvhost.engine.session;

import java.nio.ByteBuffer;
import java.util.concurrent.Executor;
import java.util.function.BooleanSupplier;
import org.jvhost.engine.device.DeviceRuntime;
import org.jvhost.engine.protocol.ConfigLayout;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.ProtocolException;
import org.jvhost.engine.transport.Message;
import org.jvhost.spi.VhostUserDevice;

/**
 * The device's config space as one connection sees it: GET_CONFIG and SET_CONFIG, and the notices of a
 * change the device sends on the {@link BackendChannel} (SET_BACKEND_REQ_FD). Control thread, except
 * the notice itself, which the device may give from any thread.
 */
final class ConfigSpace {
    private final DeviceRuntime runtime;
    private final VhostUserDevice device;
    private final Executor controlLoop;
    private BackendChannel channel;
    private BooleanSupplier notice;

    ConfigSpace(DeviceRuntime runtime, Executor controlLoop) {
        this.runtime = runtime;
        this.device = runtime.device();
        this.controlLoop = controlLoop;
    }

    ByteBuffer get(ByteBuffer p) throws ProtocolException {
        int[] range = range(FrontendRequest.GET_CONFIG, p);
        byte[] bytes = new byte[range[1]];
        try {
            device.readConfig(range[0], bytes);
        } catch (RuntimeException e) {
            throw ProtocolException.failed("GET_CONFIG: the device failed to read its config space", e);
        }
        return ConfigLayout.of(range[0], ConfigLayout.flags(p), bytes);
    }

    void set(ByteBuffer p) throws ProtocolException {
        int[] range = range(FrontendRequest.SET_CONFIG, p);
        try {
            device.writeConfig(range[0], ConfigLayout.bytes(p));
        } catch (RuntimeException e) {
            throw ProtocolException.failed("SET_CONFIG: the device failed to write its config space", e);
        }
    }

    private int[] range(FrontendRequest r, ByteBuffer p) throws ProtocolException {
        int offset = ConfigLayout.offset(p);
        int size = ConfigLayout.size(p);
        if (offset < 0 || (long) offset + size > device.configSize()) {
            throw ProtocolException.failed(r + ": range offset " + Integer.toUnsignedString(offset) + " size " + size
                    + " exceeds the device's " + device.configSize() + "-byte config space");
        }
        return new int[] {offset, size};
    }

    /**
     * SET_BACKEND_REQ_FD: the channel for back-end requests (spec: "the back-end can send requests to the
     * front-end over this socket"); replaces an earlier one. {@code replyAck}: REPLY_ACK was negotiated,
     * so each notice asks for a reply.
     */
    void setChannel(Message m, boolean replyAck) throws ProtocolException {
        if (m.fdCount() != 1) {
            throw ProtocolException.failed("SET_BACKEND_REQ_FD carries no socket fd");
        }
        close();
        BackendChannel c = new BackendChannel(runtime.name(), m.takeFd(0), controlLoop, replyAck);
        channel = c;
        notice = c::configChanged;
        runtime.setConfigNotice(notice);
    }

    /** Whether the front-end gave a back-end channel (SET_BACKEND_REQ_FD). */
    boolean hasChannel() {
        return channel != null;
    }

    /** Closes the channel, if any: the front-end left. Idempotent. */
    void close() {
        if (channel != null) {
            runtime.clearConfigNotice(notice);
            channel.close();
            channel = null;
            notice = null;
        }
    }
}
