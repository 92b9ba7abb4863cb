package org.jvhost.engine.event;

/**
 * The adaptive busy-polling limits of a worker pool (see {@link PollWindow}): a polled queue that finds
 * no new work re-arms its kicks after {@code micros} of idle time at first, and after up to
 * {@code maxMicros} once the worker's sleeps have proved too short. {@code micros} 0 disables polling
 * (and {@code maxMicros} means nothing then); {@code maxMicros == micros} is a fixed window.
 *
 * @param micros    the idle time the window starts at and shrinks back to
 * @param maxMicros the longest idle time the window grows to
 */
public record Polling(int micros, int maxMicros) {
    /** Default starting window: idle microseconds before a polled queue re-arms kicks. */
    public static final int DEFAULT_MICROS = 50;
    /** Default ceiling: a millisecond of spinning after a burst at most, against a sleep that costs more. */
    public static final int DEFAULT_MAX_MICROS = 1000;
    public static final Polling DEFAULT = new Polling(DEFAULT_MICROS, DEFAULT_MAX_MICROS);

    /** @throws IllegalArgumentException if a time is negative or the ceiling lies below the start */
    public Polling {
        if (micros < 0) {
            throw new IllegalArgumentException("poll time " + micros + " us must not be negative");
        }
        if (maxMicros < 0) {
            throw new IllegalArgumentException("maximum poll time " + maxMicros + " us must not be negative");
        }
        if (micros > 0 && maxMicros < micros) {
            throw new IllegalArgumentException("maximum poll time " + maxMicros + " us must not be below the poll time "
                    + micros + " us");
        }
    }

    /** A window starting at {@code micros} that may grow to {@link #DEFAULT_MAX_MICROS}, or further if it starts there. */
    public static Polling startingAt(int micros) {
        return new Polling(micros, Math.max(micros, DEFAULT_MAX_MICROS));
    }

    boolean enabled() {
        return micros > 0;
    }
}
