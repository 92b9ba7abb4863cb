package org.jvhost.engine.virtq;

import static org.jvhost.engine.virtq.DescriptorLayout.F_INDIRECT;
import static org.jvhost.engine.virtq.DescriptorLayout.F_NEXT;
import static org.jvhost.engine.virtq.DescriptorLayout.F_WRITE;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.jvhost.spi.GuestMemory;
import org.jvhost.spi.MemoryRegion;

/**
 * Reads one chain of a split ring into a flattened chain, checking every rule of virtio 1.2 section
 * 2.7.5 (a chain no longer than the ring, next indices inside their table, indirect tables as
 * 2.7.5.3.1 allows them, buffers inside one region, device-readable before device-writable), and breaks
 * the queue on the first one broken. The split counterpart of {@link PackedChainReader}. Worker only,
 * like its queue; never allocates.
 */
final class SplitChainReader extends ChainReader {
    // Little-endian whatever the order of the buffer handed in (indirect tables are read through region
    // windows of any order); plain get works at any alignment.
    private static final VarHandle U64 = MethodHandles.byteBufferViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);


    SplitChainReader(Breakable queue, int size, boolean indirectAllowed) {
        super(queue, "descriptor", size, indirectAllowed);
    }

    /**
     * Follows the chain from {@code head} in the descriptor table {@code desc}, checking every rule of
     * virtio 1.2 section 2.7.5, and flattens it into {@code c}.
     *
     * @return false if the chain is malformed (the queue is then broken)
     */
    boolean read(SplitDescriptorChain c, ByteBuffer desc, int head, GuestMemory mem) {
        use(mem);
        c.reset(head);
        ByteBuffer table = desc;
        int base = 0;
        int entries = size;
        long indirectGpa = -1;
        int i = head;
        // "The driver MUST NOT create a descriptor chain longer than the Queue Size of the device"
        // (2.7.5.2, 2.7.5.3.1): the buffer descriptors count, direct and indirect; the descriptor that
        // points to an indirect table does not (Linux puts a request of Queue Size segments in one table,
        // and QEMU and DPDK accept it). The budget also ends any loop.
        for (int budget = size; ; budget--) {
            if (budget == 0) {
                return fail(String.format("chain at head %d is longer than the ring size %d (a descriptor loop?)",
                        head, size));
            }
            int at = base + i * DescriptorLayout.SIZE;
            long addr = (long) U64.get(table, at + DescriptorLayout.ADDR);
            // len, flags and next in one load: | len (32) | flags (16) | next (16) |, little-endian
            long tail = (long) U64.get(table, at + DescriptorLayout.LEN);
            int len = (int) tail;
            int flags = (int) (tail >>> 32) & 0xffff;
            if ((flags & F_INDIRECT) != 0) {
                if (!checkIndirect(i, indirectGpa, addr, len, (flags & F_NEXT) != 0)) {
                    return false;
                }
                MemoryRegion r = memory.regionFor(addr);
                long offset = addr - r.guestAddress();
                table = r.window(offset);
                base = r.windowOffset(offset);
                entries = len / DescriptorLayout.SIZE;
                indirectGpa = addr;
                i = 0;
                budget++; // the table's pointer is not a buffer (and ends the direct chain: once per chain)
                continue;
            }
            if (len != 0 && !addSegment(c, i, indirectGpa, addr, len, (flags & F_WRITE) != 0)) {
                return false;
            }
            if ((flags & F_NEXT) == 0) {
                return true;
            }
            int next = (int) (tail >>> 48);
            if (next >= entries) {
                return fail(String.format("%s: next index %d is outside its table of %d entries",
                        where(i, indirectGpa), next, entries));
            }
            i = next;
        }
    }
}
