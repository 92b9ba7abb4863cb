package org.jvhost.engine.instrument;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.jvhost.engine.memory.RegionSpec;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.MemoryTableLayout;
import org.jvhost.engine.protocol.SingleMemRegionLayout;
import org.jvhost.engine.protocol.U64Layout;
import org.jvhost.engine.protocol.VringAddrLayout;
import org.jvhost.engine.protocol.VringStateLayout;
import org.jvhost.spi.VirtioFeatures;

/**
 * Strict mode's checks of one connection's message stream: it follows what the back-end offered (the
 * replies to GET_FEATURES and GET_PROTOCOL_FEATURES), the memory table and each ring's size and call
 * fd, and reports each request that breaks a {@link SpecRule}. It only watches: the session answers
 * every request as it would without it.
 *
 * <p>Resets (RESET_OWNER, RESET_DEVICE) forget nothing here: whether a front-end must send the memory
 * table and call fds again after one is not spelled out by the spec, and a false report against a
 * real front-end is worse than a missed one.
 */
final class SpecChecker {
    /** Reports one violation: the rule and what the front-end did. */
    interface Reporter {
        void report(SpecRule rule, String detail);
    }

    /** Ring indices SET_VRING_KICK/CALL can name (bits 0-7 of their u64). */
    private static final int MAX_RINGS = 256;

    private final Reporter reporter;
    private final int deviceType;
    private long offeredFeatures;
    private long offeredProtocol;
    private long ackedFeatures;
    private boolean memoryShared;
    private final List<RegionSpec> regions = new ArrayList<>();
    private final int[] ringSize = new int[MAX_RINGS];
    private final boolean[] callSet = new boolean[MAX_RINGS];

    /** @param deviceType the virtio device type, for the names of device feature bits */
    SpecChecker(Reporter reporter, int deviceType) {
        this.reporter = reporter;
        this.deviceType = deviceType;
    }

    /** A request as it arrived (payload at position 0, already size-checked by the transport). */
    void request(FrontendRequest r, ByteBuffer p) {
        if (r == null) {
            return;
        }
        switch (r) {
            case SET_FEATURES: setFeatures(U64Layout.get(p)); break;
            case SET_PROTOCOL_FEATURES: setProtocolFeatures(U64Layout.get(p)); break;
            case SET_MEM_TABLE: setMemTable(p); break;
            case ADD_MEM_REG: memoryShared = true; regions.add(SingleMemRegionLayout.region(p)); break;
            case REM_MEM_REG: removeRegion(SingleMemRegionLayout.region(p)); break;
            case SET_VRING_NUM: setVringNum(VringStateLayout.index(p), VringStateLayout.num(p)); break;
            case SET_VRING_ADDR: setVringAddr(p); break;
            case SET_VRING_CALL: ring(U64Layout.get(p), true); break;
            case SET_VRING_KICK: ring(U64Layout.get(p), false); break;
            default: break;
        }
    }

    /** A reply the back-end sent to request {@code code}. */
    void reply(int code, ByteBuffer p) {
        if (p.remaining() != U64Layout.SIZE) {
            return;
        }
        if (code == FrontendRequest.GET_FEATURES.code()) {
            offeredFeatures = U64Layout.get(p);
        } else if (code == FrontendRequest.GET_PROTOCOL_FEATURES.code()) {
            offeredProtocol = U64Layout.get(p);
        }
    }

    private void setFeatures(long features) {
        long extra = features & ~offeredFeatures;
        if (extra == 0) {
            ackedFeatures = features;
        } else { // the back-end refuses the lot, so the features before stay
            reporter.report(SpecRule.FEATURES_NOT_OFFERED, "SET_FEATURES acks " + FeatureNames.virtio(extra, deviceType)
                    + " (0x" + Long.toHexString(extra) + "), which GET_FEATURES "
                    + (offeredFeatures == 0 ? "was never asked for" : "did not offer (offered 0x"
                    + Long.toHexString(offeredFeatures) + ")"));
        }
    }

    private void setProtocolFeatures(long features) {
        long extra = features & ~offeredProtocol;
        if (extra != 0) {
            reporter.report(SpecRule.PROTOCOL_FEATURES_NOT_OFFERED, "SET_PROTOCOL_FEATURES enables "
                    + FeatureNames.protocol(extra) + " (0x" + Long.toHexString(extra) + "), which GET_PROTOCOL_FEATURES "
                    + (offeredProtocol == 0 ? "was never asked for" : "did not offer (offered 0x"
                    + Long.toHexString(offeredProtocol) + ")"));
        }
    }

    private void setMemTable(ByteBuffer p) {
        memoryShared = true;
        regions.clear();
        regions.addAll(MemoryTableLayout.regions(p));
    }

    private void removeRegion(RegionSpec gone) {
        regions.removeIf(r -> r.guestAddress() == gone.guestAddress() && r.size() == gone.size());
    }

    private void setVringNum(int index, int num) {
        if (index < 0 || index >= MAX_RINGS) {
            return; // the session refuses the index
        }
        ringSize[index] = num;
        boolean packed = (ackedFeatures & VirtioFeatures.RING_PACKED) != 0;
        if (!packed && (num <= 0 || (num & (num - 1)) != 0)) {
            reporter.report(SpecRule.VRING_NUM_NOT_POWER_OF_2, "SET_VRING_NUM ring " + index + " num "
                    + Integer.toUnsignedString(num) + " on a split ring");
        }
    }

    private void setVringAddr(ByteBuffer p) {
        int index = VringAddrLayout.index(p);
        if (!memoryShared) {
            reporter.report(SpecRule.RING_BEFORE_MEM_TABLE, "SET_VRING_ADDR ring " + index
                    + " before any SET_MEM_TABLE or ADD_MEM_REG");
            return;
        }
        int num = index >= 0 && index < MAX_RINGS && ringSize[index] > 0 ? ringSize[index] : 1;
        // split ring parts (virtio 1.2 §2.7): descriptor table 16 bytes a slot; avail flags, idx, ring
        // and used_event; used flags, idx, 8-byte elements and avail_event
        String outside = outside("desc", VringAddrLayout.desc(p), 16L * num);
        outside = outside != null ? outside : outside("avail", VringAddrLayout.avail(p), 6L + 2L * num);
        outside = outside != null ? outside : outside("used", VringAddrLayout.used(p), 6L + 8L * num);
        if (outside != null) {
            reporter.report(SpecRule.RING_OUTSIDE_MEMORY, "SET_VRING_ADDR ring " + index + ": " + outside
                    + " is not inside any of the " + regions.size() + " memory regions");
        }
    }

    /** A description of the ring part at user address {@code addr} if no region holds all of it, else null. */
    private String outside(String part, long addr, long length) {
        for (RegionSpec r : regions) {
            long offset = addr - r.userAddress();
            if (Long.compareUnsigned(offset, r.size()) < 0 && Long.compareUnsigned(length, r.size() - offset) <= 0) {
                return null;
            }
        }
        return part + " [0x" + Long.toHexString(addr) + ", +" + length + ")";
    }

    /** SET_VRING_CALL ({@code call}) or SET_VRING_KICK, which starts the ring. */
    private void ring(long u64, boolean call) {
        int index = (int) (u64 & U64Layout.VRING_INDEX_MASK);
        if (call) {
            callSet[index] = true;
        } else if (!callSet[index]) {
            reporter.report(SpecRule.MISSING_VRING_CALL, "SET_VRING_KICK starts ring " + index
                    + " before any SET_VRING_CALL for it");
        }
    }
}
