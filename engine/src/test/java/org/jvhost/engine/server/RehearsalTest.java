package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.jvhost.engine.event.WorkerPool;
import org.jvhost.engine.memory.MemoryBudget;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The successor's dress rehearsal before a hot upgrade's pause ({@link Rehearsal}): its scratch connection
 * is taken over, its rings start, each serves its chain, and it ends leaving no fd and no mapping behind.
 */
@Timeout(30)
class RehearsalTest {

    @Test
    void aScratchConnectionServesItsChainsAndLeavesNoFdOrMappingBehind() throws Exception {
        try (WorkerPool pool = new WorkerPool(2); ControlLoop loop = new ControlLoop(0)) {
            assertEquals(2, Rehearsal.run(loop, pool, MemoryBudget.defaults(), 5000), "one chain per ring, first run");
            int fds = fdCount();
            assertEquals(2, Rehearsal.run(loop, pool, MemoryBudget.defaults(), 5000), "one chain per ring");
            assertEquals(fds, fdCount(), "fds after the rehearsal");
            assertEquals(0, scratchMappings(), "mappings of the scratch memory after the rehearsal");
        }
    }

    private static int fdCount() {
        return new File("/proc/self/fd").list().length;
    }

    private static long scratchMappings() throws IOException {
        return Files.readAllLines(Path.of("/proc/self/maps")).stream().filter(l -> l.contains("jvhost-rehearsal")).count();
    }
}
