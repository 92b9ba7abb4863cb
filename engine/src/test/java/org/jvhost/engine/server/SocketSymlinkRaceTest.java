package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.jvhost.spi.DeviceContext;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Someone who may write the socket's directory swaps each fresh socket file for a symlink to another
 * file, racing the host between {@code bind} and setting the socket's mode. The mode asked for the
 * socket must never reach the file behind the symlink.
 */
@Timeout(60)
class SocketSymlinkRaceTest {
    private static final int WANTED_SWAPS = 30;
    private static final long MAX_MS = 20_000;

    @TempDir
    Path dir;
    Host host;
    final AtomicBoolean stop = new AtomicBoolean();
    Thread swapper;

    @AfterEach
    void stop() throws Exception {
        stop.set(true);
        if (swapper != null) {
            swapper.join(5000);
        }
        if (host != null) {
            host.close();
        }
    }

    @Test
    void theSocketModeNeverReachesAFileBehindASymlink() throws Exception {
        host = new Host(1);
        Path victim = Files.writeString(dir.resolve("victim"), "secret");
        Files.setPosixFilePermissions(victim, PosixFilePermissions.fromString("rw-------"));
        Path socket = dir.resolve("dev.sock");
        AtomicInteger swaps = new AtomicInteger();
        swapper = new Thread(() -> swapSocketsForSymlinks(socket, victim, swaps), "symlink-swapper");
        swapper.setDaemon(true);
        swapper.start();

        long deadline = System.nanoTime() + MAX_MS * 1_000_000L;
        int attempts = 0;
        int noticed = 0;
        while (swaps.get() < WANTED_SWAPS && System.nanoTime() < deadline) {
            attempts++;
            Files.deleteIfExists(socket); // the symlink the last round left
            DeviceContext ctx = host.newContext("dev" + attempts);
            try {
                host.addDevice(ctx, new RecordingDevice(1, 0), socket, Host.Mode.LISTEN,
                        new SocketAccess(0666, null, Set.of()));
                host.removeDevice(ctx);
            } catch (IOException refused) {
                if (refused.getMessage().contains("replaced by another file")) {
                    noticed++; // the host saw the symlink where its socket was and left it alone
                }
            }
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(victim)),
                    "the victim's mode after " + attempts + " attempts and " + swaps.get()
                    + " swaps of the socket for a symlink to it (" + noticed + " noticed by the host)");
        }
        assertTrue(swaps.get() > 0, "the swapper never replaced a socket in " + attempts + " attempts: nothing was tested");
    }

    /** Whenever a socket file appears at {@code socket}, renames a symlink to {@code victim} over it. */
    private void swapSocketsForSymlinks(Path socket, Path victim, AtomicInteger swaps) {
        Path link = dir.resolve("link.tmp");
        while (!stop.get()) {
            try {
                if (!Files.exists(link, LinkOption.NOFOLLOW_LINKS)) {
                    Files.createSymbolicLink(link, victim); // ready before the socket appears: one rename to swap
                }
                if (Files.readAttributes(socket, "unix:mode", LinkOption.NOFOLLOW_LINKS).get("mode")
                        instanceof Integer m && (m & 0170000) == 0140000) {
                    Files.move(link, socket, StandardCopyOption.ATOMIC_MOVE); // rename(2): replaces atomically
                    swaps.incrementAndGet();
                }
            } catch (IOException noSocketNow) {
                Thread.onSpinWait();
            }
        }
    }
}
