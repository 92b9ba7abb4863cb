package org.jvhost.spi;

/**
 * A live split virtqueue, seen from the device side. Handed to a device by
 * {@link VhostUserDevice#startQueue} and used only on the queue group's worker thread.
 *
 * <h2>Processing loop</h2>
 * <pre>{@code
 * DescriptorChain chain = queue.newChain();      // once, at start
 * do {
 *     queue.disableNotifications();
 *     while (queue.pop(chain)) {
 *         int written = serve(chain);
 *         queue.addUsed(chain, written);
 *     }
 *     queue.signalUsed();                         // publish used->idx, then notify if the driver wants it
 * } while (queue.enableNotifications());         // true: more buffers arrived while notifications were off
 * }</pre>
 *
 * <h2>Returning with work left (fairness)</h2>
 * Under steady traffic the loop above never ends, and while it runs, the worker thread serves nothing
 * else: the other queues and fd watches of its worker starve, and the host's own requests to that
 * worker (stopping a ring for GET_VRING_BASE, memory updates, disable, reset) time out. So a device
 * MAY return from {@link VhostUserDevice#handleKick} with buffers still available, for example after a
 * budget of N chains, and SHOULD do so on a queue that can stay busy. It may leave notifications
 * disabled when it does. The host then calls {@code handleKick} again soon, without a new kick, after
 * the other ready queues of the worker and a look at its fds and requests, and goes on doing so while
 * each call takes at least one chain and either buffers remain or notifications are still disabled.
 * <pre>{@code
 * int served = 0;
 * do {
 *     queue.disableNotifications();
 *     while (queue.pop(chain)) {
 *         queue.addUsed(chain, serve(chain));
 *         if (++served == BUDGET) {
 *             queue.signalUsed();
 *             return;                             // budget spent: the host calls back without a kick
 *         }
 *     }
 *     queue.signalUsed();
 * } while (queue.enableNotifications());
 * }</pre>
 * A call that takes no chain ends the re-delivery, so a device must not leave notifications disabled
 * on a ring it found empty unless it wants no more kicks (as a loopback's RX queue, which never waits
 * for buffers); and a queue whose buffers the device leaves on purpose (an RX queue with no frame to
 * deliver) is not called in a loop.
 *
 * <h2>Hostile drivers</h2>
 * A descriptor loop, a chain longer than the ring, an address outside guest memory, a nested indirect
 * table or an avail index that jumps by more than the ring size puts the queue into a broken state:
 * {@link #pop} returns {@code false} from then on, {@link #isBroken()} is true and
 * {@link #brokenReason()} names the index or address. Nothing outside guest memory is ever touched.
 * None of these methods throws for guest-caused faults, and none allocates.
 */
public interface Virtqueue {

    /** The queue's index within its device. */
    int index();

    /** The ring size negotiated with SET_VRING_NUM (a power of two). */
    int size();

    /** Guest memory as the device may read and write it. */
    GuestMemory memory();

    /**
     * Whether the front-end has enabled the ring. A disabled ring is never handed kicks; a device
     * delivering into another queue (a loopback writing RX) must check its target.
     */
    boolean isEnabled();

    /** A chain object to pass to {@link #pop}; allocate a few when the queue starts and reuse them. */
    DescriptorChain newChain();

    /**
     * Takes the next available descriptor chain into {@code chain}.
     *
     * @return true if a chain was taken; false if the ring is empty or broken
     */
    boolean pop(DescriptorChain chain);

    /**
     * Puts back the last {@code count} chains taken with {@link #pop} and not yet passed to
     * {@link #addUsed}, so they are popped again later (a receive path that cannot fit a frame).
     */
    void unpop(int count);

    /**
     * Returns a chain to the driver with {@code writtenBytes} bytes written into its device-writable
     * part. Becomes visible to the driver at the next {@link #publishUsed} or {@link #signalUsed}.
     */
    void addUsed(DescriptorChain chain, int writtenBytes);

    /** Makes every {@link #addUsed} so far visible to the driver (a release store of used->idx). */
    void publishUsed();

    /**
     * Publishes used entries and signals the driver through the call eventfd unless the driver
     * suppressed the notification (VRING_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX).
     *
     * @return true if the driver was signalled
     */
    boolean signalUsed();

    /** Asks the driver not to kick for new buffers (VRING_USED_F_NO_NOTIFY or avail_event). */
    void disableNotifications();

    /**
     * Asks the driver to kick again for new buffers, then re-checks the ring.
     *
     * @return true if buffers became available meanwhile, so the caller must process the ring again
     */
    boolean enableNotifications();

    /** How many chains the driver has made available and the device has not popped. 0 if broken. */
    int availableCount();

    /** True once the driver violated the ring rules; see the class comment. */
    boolean isBroken();

    /** Why the queue is broken, naming the index or address; null while it is not. */
    String brokenReason();

    /** The next avail index the device will pop (what GET_VRING_BASE reports). */
    int nextAvail();

    /** The used index the device will publish next. */
    int nextUsed();
}
