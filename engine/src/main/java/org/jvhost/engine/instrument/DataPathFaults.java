package org.jvhost.engine.instrument;

import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import org.jvhost.engine.event.Deadlines;

/**
 * One connection's data-path faults ({@link FaultPlan#stallRx()}, {@link FaultPlan#stallTx()},
 * {@link FaultPlan#dropAfterFrames()}, and random mode's pick), counted by the
 * {@link InstrumentedQueue}s of its rings. Each fault is reported when it is injected.
 *
 * <p>A stall is what a busy back-end does: the queue takes no chain for a while (pop finds none), so
 * the driver's buffers stay where they are, and then it goes on; a timer ({@link org.jvhost.engine.event.Deadlines}) posts a
 * kick to the ring's worker when the stall ends, since the driver may have stopped kicking meanwhile.
 *
 * <p>"Reset the device mid-traffic" is a dropped connection. vhost-user gives a back-end no other way
 * to reset a device that a front-end acts on: DEVICE_NEEDS_RESET (virtio 1.2 §2.1) lives in the device
 * status, which the front-end owns (GET_STATUS only reads back what it set); a config-change
 * notification needs the back-end request channel, and virtio-net front-ends do not reset on it; and
 * QEMU 7.2 only logs a signalled SET_VRING_ERR eventfd. A back-end that restarts closes the connection,
 * and a front-end with reconnect re-initializes the device from scratch: that is the reset.
 *
 * <p>Thread-safety: the per-queue arrays are written by the queue's worker only (one worker serves a
 * queue); the frame count is shared by the workers of all transmit queues.
 */
final class DataPathFaults {
    /** Random mode's bounds, per connection. */
    static final String RANDOM_BOUNDS = "per connection: 4 in 10 stall the RX or the TX queues after 1-5000 chains "
            + "for 100-2000 ms, 1 in 10 drops the connection after 1-20000 frames";
    private static final int MAX_RINGS = 256;

    private final int conn;
    private final FaultInjector.Reporter reporter;
    /** Closes the connection (posts to its control loop). */
    private final Runnable drop;
    private final long dropAfterFrames;
    private final FaultPlan.Stall stallRx;
    private final FaultPlan.Stall stallTx;
    /** "random (seed S): " or "". */
    private final String origin;
    private final AtomicLong frames = new AtomicLong();
    private final long[] chains = new long[MAX_RINGS];
    /** When the stall of each queue ends (System.nanoTime), while it lasts; worker of the queue only. */
    private final long[] stallEnds = new long[MAX_RINGS];
    private final boolean[] stalling = new boolean[MAX_RINGS];

    DataPathFaults(FaultPlan plan, int conn, FaultInjector.Reporter reporter, Runnable drop) {
        this.conn = conn;
        this.reporter = reporter;
        this.drop = drop;
        long dropAfter = conn == 1 ? plan.dropAfterFrames() : 0;
        FaultPlan.Stall rx = conn == 1 ? plan.stallRx() : null;
        FaultPlan.Stall tx = conn == 1 ? plan.stallTx() : null;
        if (plan.seed() != null) {
            Random random = new Random(plan.seed() * 131 + conn);
            int roll = random.nextInt(10);
            FaultPlan.Stall stall = new FaultPlan.Stall(1 + random.nextInt(5000), 100 + random.nextInt(1901));
            boolean onRx = random.nextBoolean();
            long frames = 1 + random.nextInt(20000);
            if (roll < 4) {
                rx = onRx ? stall : rx;
                tx = onRx ? tx : stall;
            } else if (roll == 4) {
                dropAfter = frames;
            }
        }
        this.dropAfterFrames = dropAfter;
        this.stallRx = rx;
        this.stallTx = tx;
        this.origin = plan.seed() == null ? "" : "random (seed " + plan.seed() + "): ";
    }

    /** Whether this connection has anything to inject. */
    boolean any() {
        return dropAfterFrames > 0 || stallRx != null || stallTx != null;
    }

    /** Whether queue {@code q} is stalled now. Worker of the queue. */
    boolean stalled(int q) {
        if (!stalling[q]) {
            return false;
        }
        if (System.nanoTime() - stallEnds[q] < 0) {
            return true;
        }
        stalling[q] = false;
        return false;
    }

    /** Queue {@code q} returned a chain. Worker of the queue; {@code rekick} posts a kick to it. */
    void completed(int q, boolean transmit, Runnable rekick) {
        FaultPlan.Stall stall = transmit ? stallTx : stallRx;
        if (stall != null && ++chains[q] == stall.afterChains()) {
            stalling[q] = true;
            stallEnds[q] = System.nanoTime() + stall.ms() * 1_000_000L;
            reporter.injected(origin + "stalling " + (transmit ? "transmit" : "receive") + " queue " + q + " for "
                    + stall.ms() + " ms after " + stall.afterChains() + " chains");
            Deadlines.after(stall.ms(), Runnable::run, rekick);
        }
        if (transmit && dropAfterFrames > 0 && frames.incrementAndGet() == dropAfterFrames) {
            reporter.injected(origin + "dropping connection " + conn + " after " + dropAfterFrames + " frames");
            drop.run();
        }
    }
}
