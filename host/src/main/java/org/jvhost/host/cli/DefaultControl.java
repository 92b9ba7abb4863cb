package org.jvhost.host.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * The control socket used when no {@code --control} (and no {@code [host] control}) is given, so that
 * {@code jvhost ctl} needs no flag: {@value #ENV} if set, else {@code /run/jvhost/control.sock} (systemd's
 * {@code RuntimeDirectory=jvhost}). {@code serve} takes that default only when {@value #ENV} is set or
 * {@code /run/jvhost} exists, and a failure to listen there is a warning, not the end of serving.
 */
final class DefaultControl {
    /** The environment variable naming the control socket for {@code serve} and {@code ctl}. */
    static final String ENV = "JVHOST_CONTROL";
    static final Path PATH = Path.of("/run/jvhost/control.sock");

    private DefaultControl() {
    }

    /** The socket {@code ctl} talks to without {@code --control}. */
    static Path forCtl(Map<String, String> env) {
        String v = env.get(ENV);
        return v != null && !v.isBlank() ? Path.of(v) : PATH;
    }

    /** The socket {@code serve} listens on without {@code --control} or {@code [host] control}; null for none. */
    static Path forServe(Map<String, String> env, Path runtimeDir) {
        String v = env.get(ENV);
        if (v != null && !v.isBlank()) {
            return Path.of(v);
        }
        return Files.isDirectory(runtimeDir) ? runtimeDir.resolve(PATH.getFileName()) : null;
    }
}
