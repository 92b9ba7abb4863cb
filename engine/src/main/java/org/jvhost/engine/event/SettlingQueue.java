package org.jvhost.engine.event;

/**
 * A queue that served work and is checked once more when its worker has been idle for
 * {@link Worker#SETTLE_MS}: whether the driver
 * waits for a kick it did not send or an interrupt it did not get, each lost only if the guest's half of
 * virtio's store-fence-load handshake has no fence (a TCG guest with one vCPU). See
 * {@link Worker#markUnsettled}.
 */
public interface SettlingQueue {

    /**
     * The check, on the worker thread. The queue has already left the list; it is put back
     * ({@link Worker#markUnsettled}) when it serves work again.
     */
    void settle();
}
