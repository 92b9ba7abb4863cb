package org.jvhost.engine.instrument;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Random mode's data-path faults: within their bounds, logged with the seed, the same for the same seed. */
class DataPathFaultsTest {

    @Test
    void theSameSeedInjectsTheSameFaultsAndEachNamesTheSeed() {
        boolean stalled = false;
        boolean dropped = false;
        for (long seed = 1; seed <= 30; seed++) {
            List<String> first = run(seed, 1);
            assertEquals(first, run(seed, 1), "seed " + seed);
            for (String fault : first) {
                assertTrue(fault.startsWith("random (seed " + seed + "): "), fault);
                stalled |= fault.contains("stalling");
                dropped |= fault.contains("dropping connection 1");
            }
            assertTrue(first.size() <= 2, "one stall or one drop per connection: " + first);
        }
        assertTrue(stalled && dropped, "30 seeds pick both kinds");
    }

    @Test
    void withoutASeedOnlyTheFirstConnectionMeetsThePlannedFaults() {
        FaultPlan plan = new FaultPlan(0, 0, Set.of(), 0, 0, null, 5, null, new FaultPlan.Stall(3, 100));
        assertTrue(new DataPathFaults(plan, 1, f -> { }, () -> { }).any());
        assertFalse(new DataPathFaults(plan, 2, f -> { }, () -> { }).any());
    }

    /** The faults a connection meets over 25,000 frames (one TX and one RX chain each). */
    private static List<String> run(long seed, int conn) {
        List<String> injected = new ArrayList<>();
        FaultPlan plan = new FaultPlan(0, 0, Set.of(), 0, 0, seed);
        DataPathFaults faults = new DataPathFaults(plan, conn, injected::add, () -> injected.add("dropped"));
        for (int i = 0; i < 25_000; i++) {
            faults.completed(1, true, () -> { });
            faults.completed(0, false, () -> { });
        }
        injected.remove("dropped");
        return injected;
    }
}
