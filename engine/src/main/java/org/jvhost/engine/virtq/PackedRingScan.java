package org.jvhost.engine.virtq;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Where a packed ring stands, read from its descriptor flags alone: for a front-end that cannot know
 * where a lost back-end stopped. A split ring keeps its used index in guest memory, and QEMU restarts
 * a ring at it after a back-end vanished; a packed ring has no such index, and QEMU 7.2 then sends the
 * base of its own last GET_VRING_BASE (0x80008000 if there was none: position 0, both wrap counters
 * set), which names a position the driver left long ago. The device would wait there for ever.
 *
 * <p>The flags tell the position when the ring has the shape an in-order device leaves with every
 * buffer one ring entry (single descriptors or indirect tables, which is what Linux and DPDK drivers
 * use when INDIRECT_DESC is negotiated). With the device at position {@code p} and wrap counter
 * {@code w}:
 * <pre>
 *  position   0 ............................ p ................................ n-1
 *  used       written in lap w  (AVAIL=USED=w) | written in lap !w (AVAIL=USED=!w)
 *  available  made available for lap !w       | made available for lap w (AVAIL=w, USED=!w)
 *             (AVAIL=!w, USED=w)              |
 *  and the available entries form one run that starts at p (cyclically): the driver makes entries
 *  available in ring order, and the device consumes and returns them in ring order.
 * </pre>
 * {@link #resumePoint} finds the one {@code (p, w)} every entry agrees with, or reports none; the
 * device then restarts at {@code p} with both counters there, so what it took and had not returned
 * when it was lost is taken again (as a split ring restarted at its used index does).
 */
final class PackedRingScan {
    private static final VarHandle U16 = MethodHandles.byteBufferViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);

    private PackedRingScan() {
    }

    /**
     * The vring base ({@link PackedQueue#vringBase()} encoding, avail and used equal) that every
     * entry's flags agree with, or -1 if they do not describe one position (chained buffers, entries
     * returned out of ring order, a driver in the middle of writing). Reads {@code size} flags fields.
     */
    static int resumePoint(ByteBuffer desc, int size) {
        int availableRuns = 0;
        int runStart = -1;
        int bitFlips = 0;
        int flipAt = 0;
        for (int i = 0; i < size; i++) {
            int prev = i == 0 ? size - 1 : i - 1;
            boolean av = available(desc, i);
            if (av && !available(desc, prev)) {
                availableRuns++;
                runStart = i;
            }
            if (avail(desc, i) != avail(desc, prev)) {
                bitFlips++;
                flipAt = i;
            }
        }
        int p;
        boolean w;
        if (availableRuns == 1) {
            p = runStart;
            w = avail(desc, p);
        } else if (availableRuns == 0 && (bitFlips == 0 || bitFlips == 2)) {
            // all available or all used: the lap changes at p and, cyclically, at 0 (or nowhere: p = 0)
            p = bitFlips == 0 ? 0 : flipAt;
            w = available(desc, p) ? avail(desc, p) : !avail(desc, p);
        } else {
            return -1;
        }
        for (int i = 0; i < size; i++) {
            boolean ahead = i >= p; // not yet reached in the device's lap w
            boolean expected = available(desc, i) ? (ahead == w) : (ahead != w);
            if (avail(desc, i) != expected) {
                return -1;
            }
        }
        int half = p | (w ? 0x8000 : 0);
        return half | half << 16;
    }

    private static int flags(ByteBuffer desc, int i) {
        return Short.toUnsignedInt((short) U16.getAcquire(desc, i * PackedDescriptorLayout.SIZE
                + PackedDescriptorLayout.FLAGS));
    }

    private static boolean avail(ByteBuffer desc, int i) {
        return (flags(desc, i) & PackedDescriptorLayout.F_AVAIL) != 0;
    }

    private static boolean available(ByteBuffer desc, int i) {
        int f = flags(desc, i);
        return ((f & PackedDescriptorLayout.F_AVAIL) != 0) != ((f & PackedDescriptorLayout.F_USED) != 0);
    }
}
