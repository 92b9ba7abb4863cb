package org.jvhost.engine.event;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** The adaptive polling window: where it starts, when it grows and shrinks, and its bounds. */
class PollWindowTest {
    private static final long US = 1000;

    @Test
    void startsAtTheFloor() {
        assertEquals(50 * US, new PollWindow(new Polling(50, 1000)).nanos());
    }

    @Test
    void equalLimitsAreAFixedWindow() {
        PollWindow w = new PollWindow(new Polling(20, 20));
        assertEquals(20 * US, w.nanos());
        w.wokeToWork(5 * US, 1);
        assertEquals(20 * US, w.nanos(), "grows no further than the ceiling");
        w.wokeToWork(10_000 * US, 1);
        assertEquals(20 * US, w.nanos(), "shrinks no further than the floor");
    }

    @Test
    void shortSleepsDoubleItUpToTheCeiling() {
        PollWindow w = new PollWindow(new Polling(50, 300));
        w.wokeToWork(100 * US, 1);
        assertEquals(100 * US, w.nanos());
        w.wokeToWork(100 * US, 1);
        assertEquals(200 * US, w.nanos());
        w.wokeToWork(100 * US, 1);
        assertEquals(300 * US, w.nanos(), "capped at the ceiling");
    }

    @Test
    void severalKicksDuringALongSleepAlsoGrowIt() {
        PollWindow w = new PollWindow(new Polling(50, 1000));
        w.wokeToWork(5000 * US, 3); // the driver kept sending while the worker's CPU was slow to wake
        assertEquals(100 * US, w.nanos());
    }

    @Test
    void longSleepsWithOneKickHalveItDownToTheFloor() {
        PollWindow w = new PollWindow(new Polling(50, 1000));
        for (int i = 0; i < 4; i++) {
            w.wokeToWork(10 * US, 1);
        }
        assertEquals(800 * US, w.nanos());
        w.wokeToWork(2000 * US, 1);
        assertEquals(400 * US, w.nanos());
        w.wokeToWork(2000 * US, 0);
        w.wokeToWork(2000 * US, 1);
        w.wokeToWork(2000 * US, 1);
        assertEquals(50 * US, w.nanos(), "not below the floor");
    }

    @Test
    void zeroDisablesPollingWhateverTheMaximum() {
        PollWindow off = new PollWindow(new Polling(0, 1000));
        off.wokeToWork(1, 5);
        assertEquals(0, off.nanos());
        assertEquals(0, off.ceiling());
    }

    @Test
    void limitsAreCheckedWithTheValuesInTheMessage() {
        assertEquals("poll time -1 us must not be negative",
                assertThrows(IllegalArgumentException.class, () -> new Polling(-1, 10)).getMessage());
        assertEquals("maximum poll time -5 us must not be negative",
                assertThrows(IllegalArgumentException.class, () -> new Polling(0, -5)).getMessage());
        assertEquals("maximum poll time 40 us must not be below the poll time 50 us",
                assertThrows(IllegalArgumentException.class, () -> new Polling(50, 40)).getMessage());
        assertEquals(new Polling(50, 1000), Polling.startingAt(50));
        assertEquals(new Polling(20_000, 20_000), Polling.startingAt(20_000), "a longer start is a fixed window");
        assertEquals(new Polling(0, 1000), Polling.startingAt(0));
    }
}
