package org.jvhost.engine.virtq;

import org.jvhost.spi.GuestMemory;

/**
 * What the two layouts' chain readers ({@link SplitChainReader}, {@link PackedChainReader}) share: the
 * ring size that bounds a chain, whether indirect tables were negotiated, the buffer checks of
 * {@link ChainSegments}, and how a broken rule is named and reported (the reader's queue breaks).
 * Worker only, like the queues; never allocates but for the message of a broken rule.
 */
abstract class ChainReader {

    /** The queue a reader breaks when a chain breaks a rule. */
    interface Breakable {
        /** Breaks the queue (once) with {@code what}; returns false for the callers' convenience. */
        boolean fail(String what);
    }

    private final Breakable queue;
    /** What a descriptor outside an indirect table is called in a message: "descriptor", "ring entry". */
    private final String directName;
    final int size;
    final boolean indirectAllowed;
    /** The guest memory of the chain being read. */
    GuestMemory memory;
    /** The buffer checks both layouts share, and the region the last buffer fell in. */
    final ChainSegments segments = new ChainSegments();

    ChainReader(Breakable queue, String directName, int size, boolean indirectAllowed) {
        this.queue = queue;
        this.directName = directName;
        this.size = size;
        this.indirectAllowed = indirectAllowed;
    }

    /** Starts a chain in {@code mem}. */
    final void use(GuestMemory mem) {
        memory = mem;
        segments.use(mem);
    }

    /** Breaks the reader's queue (once) with {@code what}; returns false for the callers' convenience. */
    final boolean fail(String what) {
        return queue.fail(what);
    }

    /** Checks a descriptor with the INDIRECT flag (NEXT with it or not) against the spec's rules for tables. */
    final boolean checkIndirect(int i, long tableGpa, long addr, int len, boolean withNext) {
        String problem = segments.indirectProblem(indirectAllowed, tableGpa != -1, withNext, addr, len);
        return problem == null || fail(where(i, tableGpa) + ": " + problem);
    }

    /** Validates one non-empty buffer and appends it to the chain. */
    final boolean addSegment(SplitDescriptorChain c, int i, long tableGpa, long addr, int len, boolean writable) {
        String problem = segments.add(c, addr, len, writable);
        return problem == null || fail(where(i, tableGpa) + ": " + problem);
    }

    /** Names descriptor {@code i}, of the ring or of the table at {@code tableGpa} (-1: none). */
    final String where(int i, long tableGpa) {
        return tableGpa == -1 ? directName + " " + i
                : String.format("descriptor %d of the indirect table at 0x%x", i, tableGpa);
    }
}
