package org.jvhost.engine.transport;

import java.nio.ByteBuffer;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.MemoryTableLayout;
import org.jvhost.engine.protocol.ProtocolException;
import org.jvhost.engine.protocol.U64Layout;

/**
 * How many fds each request carries (spec "Front-end message types"). A mismatch is a malformed
 * message: an fd too many would be silently leaked or misattributed, an fd too few leaves a ring or a
 * region without its file.
 */
final class FdPolicy {
    private FdPolicy() {
    }

    /** Checks {@code fdCount} for {@code request}, logged as {@code name} (null: a code the spec does not define, no fds allowed). */
    static void check(String name, FrontendRequest request, ByteBuffer payload, int fdCount) throws ProtocolException {
        int min;
        int max;
        if (request == null) {
            min = 0;
            max = 0;
        } else {
            switch (request) {
                case SET_MEM_TABLE:
                    // one fd per region, in table order
                    min = MemoryTableLayout.nregions(payload);
                    max = min;
                    break;
                case ADD_MEM_REG:
                    min = 1;
                    max = 1;
                    break;
                case REM_MEM_REG:
                    // QEMU attaches the region's fd, other front-ends do not; the back-end only closes it
                    min = 0;
                    max = 1;
                    break;
                case SET_VRING_KICK: case SET_VRING_CALL: case SET_VRING_ERR:
                    // "Bit 8 is the invalid FD flag. This flag is set when there is no file descriptor"
                    min = (U64Layout.get(payload) & U64Layout.VRING_NOFD_MASK) != 0 ? 0 : 1;
                    max = min;
                    break;
                case SET_LOG_BASE: case SET_LOG_FD:
                    // the session names a missing log fd (a refusal the front-end can be told about)
                case SET_BACKEND_REQ_FD: case SET_INFLIGHT_FD:
                    // the session names a missing fd (a refusal the front-end can be told about)
                case GPU_SET_SOCKET: case SET_DEVICE_STATE_FD:
                    // not implemented, but well-formed with their fd: the session refuses them politely
                    min = 0;
                    max = 1;
                    break;
                default:
                    min = 0;
                    max = 0;
                    break;
            }
        }
        if (fdCount < min || fdCount > max) {
            throw ProtocolException.malformed(name + ": carries " + fdCount + " fds, expected "
                    + (min == max ? String.valueOf(min) : min + " to " + max));
        }
    }
}
