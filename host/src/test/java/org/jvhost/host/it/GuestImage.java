package org.jvhost.host.it;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * The test guest (Debian kernel + busybox initramfs), built once per test JVM by
 * {@code scripts/build-guest.sh} into {@code host/target/it-guest/}. See that script for the
 * {@code jvtest.*} kernel parameters its /init understands and the markers it prints.
 */
public final class GuestImage {

    private static Path dir;

    private GuestImage() {
    }

    public static synchronized Path kernel() {
        return build().resolve("vmlinuz");
    }

    public static synchronized Path initramfs() {
        return build().resolve("initramfs.cpio.gz");
    }

    private static Path build() {
        if (dir != null) {
            return dir;
        }
        Path out = Peers.targetDir().resolve("it-guest");
        Path script = Peers.scriptsDir().resolve("build-guest.sh");
        try (ProcessUnderTest p = ProcessUnderTest.start("build-guest", List.of(script.toString(), out.toString()),
                Peers.targetDir().resolve("it-logs"))) {
            int status = p.awaitExit(Duration.ofSeconds(60));
            if (status != 0) {
                throw new AssertionError(script + " failed with status " + status + p.tail());
            }
        }
        if (!Files.isRegularFile(out.resolve("vmlinuz")) || !Files.isRegularFile(out.resolve("initramfs.cpio.gz"))) {
            throw new AssertionError(script + " did not produce vmlinuz and initramfs.cpio.gz in " + out);
        }
        dir = out;
        return dir;
    }

}
