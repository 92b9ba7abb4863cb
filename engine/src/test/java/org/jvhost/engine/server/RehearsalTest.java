package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
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
            List<String> fds = rehearsalKindFds();
            assertEquals(2, Rehearsal.run(loop, pool, MemoryBudget.defaults(), 5000), "one chain per ring");
            // Only the kinds of fd a rehearsal makes (its memory file, eventfds, the socket pair): the JVM
            // opens other files lazily (a class's jar, say) while this test runs in a JVM shared with others.
            List<String> after = rehearsalKindFds();
            for (int i = 0; i < 20 && !after.equals(fds); i++) {
                Thread.sleep(100); // another test's loop closing late
                after = rehearsalKindFds();
            }
            assertEquals(fds, after, "fds after the rehearsal (fd -> what it is)");
            assertEquals(0, scratchMappings(), "mappings of the scratch memory after the rehearsal");
        }
    }

    /** "fd -> target" of this process's fds that are eventfds, sockets or the rehearsal's memory file. */
    private static List<String> rehearsalKindFds() throws IOException {
        List<String> out = new ArrayList<>();
        for (String fd : new File("/proc/self/fd").list()) {
            try {
                String target = Files.readSymbolicLink(Path.of("/proc/self/fd", fd)).toString();
                if (target.startsWith("anon_inode:") || target.startsWith("socket:") || target.contains("jvhost-rehearsal")) {
                    out.add(fd + " -> " + target);
                }
            } catch (IOException e) {
                // closed meanwhile (the directory's own fd among them)
            }
        }
        Collections.sort(out);
        return out;
    }

    private static long scratchMappings() throws IOException {
        return Files.readAllLines(Path.of("/proc/self/maps")).stream().filter(l -> l.contains("jvhost-rehearsal")).count();
    }
}
