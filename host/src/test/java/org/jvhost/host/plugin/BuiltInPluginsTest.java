package org.jvhost.host.plugin;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The temporary copies of the built-in plugins: those of a killed run are removed at the next start. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class BuiltInPluginsTest {

    @TempDir
    Path tmp;

    private Path copies(String name) throws Exception {
        Path dir = Files.createDirectory(tmp.resolve(name));
        Files.writeString(dir.resolve("loopback.jar"), "jar");
        return dir;
    }

    @Test
    void directoriesOfGoneOwnersAreRemovedAndLiveOnesKept() throws Exception {
        Process gone = new ProcessBuilder("true").start();
        assertTrue(gone.waitFor(10, TimeUnit.SECONDS));
        long self = ProcessHandle.current().pid();
        Path orphan = copies("jvhost-plugins-" + gone.pid() + "-123");
        Path live = copies("jvhost-plugins-" + self + "-456");
        Path reused = copies("jvhost-plugins-" + self + "-789");
        // written long before this process started: its pid was reused, the owner is gone
        Files.setLastModifiedTime(reused, FileTime.fromMillis(0));
        Path legacy = copies("jvhost-plugins-4242424242"); // no pid in the name: cannot tell, left alone
        Path other = copies("something-else-" + gone.pid() + "-1");

        BuiltInPlugins.removeOrphans(tmp);

        assertFalse(Files.exists(orphan), "the copies of a run that is gone");
        assertFalse(Files.exists(reused), "the copies of a run whose pid now belongs to a younger process");
        assertTrue(Files.exists(live.resolve("loopback.jar")), "a running jvhost's copies");
        assertTrue(Files.exists(legacy));
        assertTrue(Files.exists(other));
    }
}
