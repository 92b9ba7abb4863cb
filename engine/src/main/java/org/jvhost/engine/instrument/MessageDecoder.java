package org.jvhost.engine.instrument;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.jvhost.engine.memory.RegionSpec;
import org.jvhost.engine.protocol.ConfigLayout;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.InflightLayout;
import org.jvhost.engine.protocol.MemoryTableLayout;
import org.jvhost.engine.protocol.MessageHeader;
import org.jvhost.engine.protocol.SingleMemRegionLayout;
import org.jvhost.engine.protocol.U64Layout;
import org.jvhost.engine.protocol.VringAddrLayout;
import org.jvhost.engine.protocol.VringStateLayout;

/**
 * A vhost-user message's payload as named fields, for the trace: the names are the spec's
 * ({@code struct vhost_vring_addr}, {@code VhostUserMemoryRegion}, ...), addresses are hex strings and
 * feature words are lists of bit names. Only payloads the transport has already size-checked are
 * decoded; any other payload is described by its size alone.
 */
final class MessageDecoder {
    private MessageDecoder() {
    }

    /** The header flags by name: {@code VERSION_1}, {@code REPLY}, {@code NEED_REPLY}, or a hex rest. */
    static List<String> flags(int flags) {
        List<String> names = new ArrayList<>();
        names.add("VERSION_" + (flags & MessageHeader.VERSION_MASK));
        if ((flags & MessageHeader.REPLY) != 0) {
            names.add("REPLY");
        }
        if ((flags & MessageHeader.NEED_REPLY) != 0) {
            names.add("NEED_REPLY");
        }
        int rest = flags & ~(MessageHeader.VERSION_MASK | MessageHeader.REPLY | MessageHeader.NEED_REPLY);
        if (rest != 0) {
            names.add("0x" + Integer.toHexString(rest));
        }
        return names;
    }

    /** The fields of request {@code r}'s payload {@code p} (position 0), or an empty map if it has none. */
    static Map<String, Object> request(FrontendRequest r, ByteBuffer p, int deviceType) {
        Map<String, Object> f = new LinkedHashMap<>();
        if (r == null || p.remaining() == 0) {
            return f;
        }
        switch (r) {
            case SET_FEATURES: f.put("features", FeatureNames.virtio(U64Layout.get(p), deviceType)); break;
            case SET_PROTOCOL_FEATURES: f.put("features", FeatureNames.protocol(U64Layout.get(p))); break;
            case SET_MEM_TABLE: f.put("regions", regions(MemoryTableLayout.regions(p))); break;
            case ADD_MEM_REG: case REM_MEM_REG: f.putAll(region(SingleMemRegionLayout.region(p))); break;
            case SET_VRING_NUM: case SET_VRING_BASE: case GET_VRING_BASE: case SET_VRING_ENABLE:
                f.put("index", VringStateLayout.index(p));
                f.put(r == FrontendRequest.SET_VRING_ENABLE ? "enable" : "num", VringStateLayout.num(p));
                break;
            case SET_VRING_ADDR: vringAddr(p, f); break;
            case SET_VRING_KICK: case SET_VRING_CALL: case SET_VRING_ERR: vringFile(U64Layout.get(p), f); break;
            case SET_STATUS: f.put("status", "0x" + Long.toHexString(U64Layout.get(p))); break;
            case GET_CONFIG: case SET_CONFIG: config(p, r == FrontendRequest.SET_CONFIG, f); break;
            case GET_INFLIGHT_FD: case SET_INFLIGHT_FD: inflight(p, f); break;
            default: f.put("payload_bytes", p.remaining()); break;
        }
        return f;
    }

    /** GET/SET_INFLIGHT_FD and GET_INFLIGHT_FD's reply: the region's size and offset, the queues it covers. */
    private static void inflight(ByteBuffer p, Map<String, Object> f) {
        if (p.remaining() != InflightLayout.SIZE) {
            f.put("payload_bytes", p.remaining());
            return;
        }
        f.put("mmap_size", InflightLayout.mmapSize(p));
        f.put("mmap_offset", InflightLayout.mmapOffset(p));
        f.put("num_queues", InflightLayout.numQueues(p));
        f.put("queue_size", InflightLayout.queueSize(p));
    }

    /** The fields of a reply to request {@code code} carrying {@code p} (position 0). */
    static Map<String, Object> reply(int code, ByteBuffer p, int deviceType) {
        Map<String, Object> f = new LinkedHashMap<>();
        FrontendRequest r = FrontendRequest.of(code);
        if (r == FrontendRequest.GET_CONFIG) {
            if (p.remaining() == 0) {
                f.put("error", "zero-length reply: the request was refused");
            } else {
                config(p, true, f);
            }
            return f;
        }
        if (r == FrontendRequest.GET_INFLIGHT_FD && p.remaining() == InflightLayout.SIZE) {
            inflight(p, f);
            return f;
        }
        if (p.remaining() == VringStateLayout.SIZE && r == FrontendRequest.GET_VRING_BASE) {
            f.put("index", VringStateLayout.index(p));
            f.put("num", VringStateLayout.num(p));
            return f;
        }
        if (p.remaining() != U64Layout.SIZE) {
            f.put("payload_bytes", p.remaining());
            return f;
        }
        long v = U64Layout.get(p);
        switch (r == null ? FrontendRequest.SET_OWNER : r) {
            case GET_FEATURES: f.put("features", FeatureNames.virtio(v, deviceType)); break;
            case GET_PROTOCOL_FEATURES: f.put("features", FeatureNames.protocol(v)); break;
            case GET_QUEUE_NUM: case GET_MAX_MEM_SLOTS: f.put("num", v); break;
            case GET_STATUS: f.put("status", "0x" + Long.toHexString(v)); break;
            default: f.put("ack", v == 0 ? "ok" : "failed (" + v + ")"); break;
        }
        return f;
    }

    private static List<Object> regions(List<RegionSpec> regions) {
        List<Object> list = new ArrayList<>();
        regions.forEach(r -> list.add(region(r)));
        return list;
    }

    private static Map<String, Object> region(RegionSpec r) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("guest_phys_addr", hex(r.guestAddress()));
        m.put("memory_size", hex(r.size()));
        m.put("userspace_addr", hex(r.userAddress()));
        m.put("mmap_offset", hex(r.mmapOffset()));
        return m;
    }

    private static void vringAddr(ByteBuffer p, Map<String, Object> f) {
        f.put("index", VringAddrLayout.index(p));
        f.put("flags", VringAddrLayout.flags(p) == 0 ? "0" : "0x" + Integer.toHexString(VringAddrLayout.flags(p)));
        f.put("desc_user_addr", hex(VringAddrLayout.desc(p)));
        f.put("used_user_addr", hex(VringAddrLayout.used(p)));
        f.put("avail_user_addr", hex(VringAddrLayout.avail(p)));
        f.put("log_guest_addr", hex(VringAddrLayout.log(p)));
    }

    /** A u64 of SET_VRING_KICK/CALL/ERR: bits 0-7 the ring index, bit 8 "no fd" (spec "SET_VRING_KICK"). */
    private static void vringFile(long v, Map<String, Object> f) {
        f.put("index", (int) (v & U64Layout.VRING_INDEX_MASK));
        f.put("nofd", (v & U64Layout.VRING_NOFD_MASK) != 0);
    }

    private static void config(ByteBuffer p, boolean withBytes, Map<String, Object> f) {
        f.put("offset", ConfigLayout.offset(p));
        f.put("size", ConfigLayout.size(p));
        f.put("flags", ConfigLayout.flags(p));
        if (withBytes) {
            StringBuilder s = new StringBuilder();
            for (byte b : ConfigLayout.bytes(p)) {
                s.append(Character.forDigit((b >> 4) & 0xf, 16)).append(Character.forDigit(b & 0xf, 16));
            }
            f.put("bytes", s.toString());
        }
    }

    private static String hex(long v) {
        return "0x" + Long.toHexString(v);
    }
}
