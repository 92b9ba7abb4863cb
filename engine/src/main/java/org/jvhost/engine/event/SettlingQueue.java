package org.jvhost.engine.event;

/**
 * A queue that served work and is checked once more when its worker has been idle for
 * {@link Worker#SETTLE_MS} ({@link Worker#markUnsettled}): whether the driver waits for an interrupt it did
 * not get, or keeps a buffer it did not kick for.
 *
 * <p>Why: virtio's notification handshakes are a store, a full fence and a load on each side (the device
 * publishes used->idx and reads used_event, the driver writes used_event and re-reads used->idx; the same
 * for kicks with avail->idx and avail_event), so that at least one side sees the other. A guest whose
 * fence does nothing (QEMU's TCG emits no barriers for a machine with one vCPU) can lose: it sleeps on an
 * interrupt or keeps a buffer without a kick, for good. Once the guest's store has left its store buffer,
 * which a millisecond is far more than enough for, a second look finds what was lost. With working
 * barriers the look finds nothing to do.
 */
public interface SettlingQueue {

    /**
     * The check, on the worker thread. The queue has already left the list; it is put back
     * ({@link Worker#markUnsettled}) when it serves work again.
     */
    void settle();
}
