package org.jvhost.engine.virtq;

import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.GuestMemory;
import org.jvhost.spi.Virtqueue;

/**
 * The device side of a split virtqueue (virtio 1.2 section 2.7) over guest memory (STUB: signatures
 * agreed between the virtqueue owner and the protocol owner; bodies to be written).
 */
public final class SplitQueue implements Virtqueue {

    /**
     * A live queue.
     *
     * @param index     queue index within the device
     * @param size      ring size (power of two, 1..32768)
     * @param descGpa   guest-physical address of the descriptor table (16-byte aligned)
     * @param availGpa  guest-physical address of the avail ring (2-byte aligned)
     * @param usedGpa   guest-physical address of the used ring (4-byte aligned)
     * @param features  negotiated virtio features (EVENT_IDX, INDIRECT_DESC matter here)
     * @param memory    guest memory
     * @param nextAvail the first avail index to pop (SET_VRING_BASE)
     * @param notifier  how to signal the driver
     * @throws IllegalArgumentException naming the field if an address is misaligned, a ring lies outside
     *                                  guest memory, or the size is not a power of two
     */
    public SplitQueue(int index, int size, long descGpa, long availGpa, long usedGpa, long features,
                      GuestMemory memory, int nextAvail, CallNotifier notifier) {
        throw new UnsupportedOperationException("stub");
    }

    /**
     * Swaps in a new guest-memory snapshot (memory hot-plug, SET_MEM_TABLE while running) and re-resolves
     * the rings. If a ring no longer lies in guest memory the queue breaks. Called on the queue's worker.
     */
    public void updateMemory(GuestMemory memory) {
        throw new UnsupportedOperationException("stub");
    }

    /** Replaces the call notifier (SET_VRING_CALL while running). Safe from any thread. */
    public void setNotifier(CallNotifier notifier) {
        throw new UnsupportedOperationException("stub");
    }

    /** Sets the enabled flag the device sees. Safe from any thread. */
    public void setEnabled(boolean enabled) {
        throw new UnsupportedOperationException("stub");
    }

    @Override public int index() { throw new UnsupportedOperationException("stub"); }
    @Override public int size() { throw new UnsupportedOperationException("stub"); }
    @Override public GuestMemory memory() { throw new UnsupportedOperationException("stub"); }
    @Override public boolean isEnabled() { throw new UnsupportedOperationException("stub"); }
    @Override public DescriptorChain newChain() { throw new UnsupportedOperationException("stub"); }
    @Override public boolean pop(DescriptorChain chain) { throw new UnsupportedOperationException("stub"); }
    @Override public void unpop(int count) { throw new UnsupportedOperationException("stub"); }
    @Override public void addUsed(DescriptorChain chain, int writtenBytes) { throw new UnsupportedOperationException("stub"); }
    @Override public void publishUsed() { throw new UnsupportedOperationException("stub"); }
    @Override public boolean signalUsed() { throw new UnsupportedOperationException("stub"); }
    @Override public void disableNotifications() { throw new UnsupportedOperationException("stub"); }
    @Override public boolean enableNotifications() { throw new UnsupportedOperationException("stub"); }
    @Override public int availableCount() { throw new UnsupportedOperationException("stub"); }
    @Override public boolean isBroken() { throw new UnsupportedOperationException("stub"); }
    @Override public String brokenReason() { throw new UnsupportedOperationException("stub"); }
    @Override public int nextAvail() { throw new UnsupportedOperationException("stub"); }
    @Override public int nextUsed() { throw new UnsupportedOperationException("stub"); }
}
