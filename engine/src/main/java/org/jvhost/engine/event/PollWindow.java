package org.jvhost.engine.event;

/**
 * How long a worker polls a queue that finds no new work before it re-arms kicks and sleeps: a window
 * that adapts between a floor and a ceiling ({@link Polling}: {@code --poll-us} and
 * {@code --poll-max-us}), as Linux's cpuidle haltpoll governor adapts its poll time.
 *
 * <p>Why adapt: a sleep is not just the epoll wake-up the window saves. When the worker sleeps, its CPU
 * may go idle, and in a virtual machine an idle vCPU halts; waking it for the driver's next kick then
 * waits for the hypervisor to run the vCPU again, which on a busy host takes milliseconds, while the
 * frames in flight wait (issue 11: the worker off the CPU three quarters of the time, asleep in
 * epoll_wait, while DPDK's back-end, which never sleeps, kept its rate). A window long enough to bridge
 * the driver's pauses avoids that, but costs a busy CPU after every burst of a sparse flow. So the window
 * starts at the floor and:
 * <ul>
 *   <li>doubles (up to the ceiling) when the worker slept for less than the ceiling before a kick found
 *       work, or when the driver kicked more than once before the worker ran: polling that much longer
 *       would have caught that work without the sleep;</li>
 *   <li>halves (down to the floor) when a sleep outlasted the ceiling: the flow has real pauses, and
 *       polling through them would only burn the CPU.</li>
 * </ul>
 * One window per worker, since the worker as a whole sleeps; worker thread only, no allocation.
 */
final class PollWindow {
    private final long floor;
    private final long ceiling;
    private long nanos;

    /** A window between {@code limits.micros()} and {@code limits.maxMicros()}; closed if polling is disabled. */
    PollWindow(Polling limits) {
        this.floor = limits.micros() * 1000L;
        this.ceiling = limits.enabled() ? limits.maxMicros() * 1000L : 0;
        this.nanos = floor;
    }

    /** The idle time after which a polled queue re-arms its kicks, now. */
    long nanos() {
        return nanos;
    }

    /** The longest window; 0 if polling is disabled. */
    long ceiling() {
        return ceiling;
    }

    /**
     * The worker slept {@code sleptNanos} in epoll_wait and woke to a kick that found work; the kick
     * eventfd had counted {@code kicks} kicks by then.
     */
    void wokeToWork(long sleptNanos, long kicks) {
        if (sleptNanos < ceiling || kicks > 1) {
            nanos = Math.min(ceiling, nanos * 2);
        } else {
            nanos = Math.max(floor, nanos / 2);
        }
    }
}
