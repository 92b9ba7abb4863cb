package org.jvhost.engine.protocol;

import java.nio.ByteBuffer;

/** Payload buffers and the per-request payload size rules (syntax only; values are the session's business). */
public final class Payloads {
    private Payloads() {
    }

    /** A zeroed heap buffer of {@code size} bytes in wire order. */
    public static ByteBuffer allocate(int size) {
        return ByteBuffer.allocate(size).order(MessageHeader.ORDER);
    }

    /**
     * Checks that {@code payload} has the size the spec gives {@code request}'s body. Requests without a
     * body, and requests jvhost does not implement, are not checked: their payload is ignored.
     */
    public static void checkSize(FrontendRequest request, ByteBuffer payload) throws ProtocolException {
        int size = payload.remaining();
        switch (request) {
            case SET_FEATURES: case SET_PROTOCOL_FEATURES: case SET_VRING_KICK: case SET_VRING_CALL:
            case SET_VRING_ERR: case SET_STATUS: case SEND_RARP:
                expect(request, size, U64Layout.SIZE);
                break;
            case SET_VRING_NUM: case SET_VRING_BASE: case GET_VRING_BASE: case SET_VRING_ENABLE:
                expect(request, size, VringStateLayout.SIZE);
                break;
            case SET_VRING_ADDR:
                expect(request, size, VringAddrLayout.SIZE);
                break;
            case SET_LOG_BASE:
                expect(request, size, LogLayout.SIZE);
                break;
            case ADD_MEM_REG: case REM_MEM_REG:
                expect(request, size, SingleMemRegionLayout.SIZE);
                break;
            case GET_INFLIGHT_FD: case SET_INFLIGHT_FD:
                expect(request, size, InflightLayout.SIZE);
                break;
            case SET_MEM_TABLE:
                checkMemTable(payload);
                break;
            case GET_CONFIG: case SET_CONFIG:
                checkConfig(request, payload);
                break;
            default:
                break;
        }
    }

    private static void expect(FrontendRequest request, int size, int expected) throws ProtocolException {
        if (size != expected) {
            throw ProtocolException.malformed(request + ": payload size " + size + ", expected " + expected);
        }
    }

    private static void checkMemTable(ByteBuffer p) throws ProtocolException {
        if (p.remaining() < MemoryTableLayout.REGIONS) {
            throw ProtocolException.malformed("SET_MEM_TABLE: payload size " + p.remaining()
                    + " is shorter than the table header (" + MemoryTableLayout.REGIONS + ")");
        }
        int n = MemoryTableLayout.nregions(p);
        if (n < 0 || n > MemoryTableLayout.MAX_REGIONS) {
            throw ProtocolException.malformed("SET_MEM_TABLE: nregions " + Integer.toUnsignedString(n)
                    + " exceeds " + MemoryTableLayout.MAX_REGIONS);
        }
        if (p.remaining() < MemoryTableLayout.sizeFor(n)) {
            throw ProtocolException.malformed("SET_MEM_TABLE: payload size " + p.remaining() + " too short for "
                    + n + " regions (" + MemoryTableLayout.sizeFor(n) + ")");
        }
    }

    private static void checkConfig(FrontendRequest request, ByteBuffer p) throws ProtocolException {
        if (p.remaining() < ConfigLayout.PAYLOAD) {
            throw ProtocolException.malformed(request + ": payload size " + p.remaining()
                    + " is shorter than the config header (" + ConfigLayout.PAYLOAD + ")");
        }
        int n = ConfigLayout.size(p);
        if (n < 0 || n > ConfigLayout.MAX_CONFIG || p.remaining() != ConfigLayout.PAYLOAD + n) {
            throw ProtocolException.malformed(request + ": config size field " + Integer.toUnsignedString(n)
                    + " does not match payload size " + p.remaining() + " (at most " + ConfigLayout.MAX_CONFIG + ")");
        }
    }
}
