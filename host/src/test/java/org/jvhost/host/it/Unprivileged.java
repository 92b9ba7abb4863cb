package org.jvhost.host.it;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipalLookupService;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * jvhost as the unprivileged user {@value #USER} (group {@value #GROUP}), started by the root test:
 * {@code setpriv} switches every uid and gid (which clears all capabilities, CAP_NET_ADMIN included) and
 * resets the environment to that user's. Its directory, owned by {@value #USER}, holds a copy of
 * jvhost.jar (the checkout may sit where {@value #USER} cannot read, e.g. under /root) and the sockets
 * jvhost creates; root front-ends still reach them.
 */
final class Unprivileged {
    static final String USER = "nobody";
    static final String GROUP = "nogroup";
    private static final String SETPRIV = "/usr/bin/setpriv";
    private static final Pattern CAP_EFF = Pattern.compile("(?m)^CapEff:\\s+([0-9a-f]+)$");
    private static final Pattern UID = Pattern.compile("(?m)^Uid:\\s+(\\d+)\\s+(\\d+)");

    private final Path dir;
    private final Path jar;
    private final int uid;

    private Unprivileged(Path dir, Path jar, int uid) {
        this.dir = dir;
        this.jar = jar;
        this.uid = uid;
    }

    /** Gives {@code dir} (a test's socket directory) to {@value #USER} and copies the jar into it. */
    static Unprivileged in(Path dir) {
        Peers.assumeInstalled(SETPRIV, "util-linux");
        try {
            Path jar = Files.copy(Serve.jar(), dir.resolve("jvhost.jar"), StandardCopyOption.REPLACE_EXISTING);
            Files.setPosixFilePermissions(jar, PosixFilePermissions.fromString("r--r--r--"));
            UserPrincipalLookupService users = dir.getFileSystem().getUserPrincipalLookupService();
            Files.setOwner(dir, users.lookupPrincipalByName(USER));
            Files.getFileAttributeView(dir, java.nio.file.attribute.PosixFileAttributeView.class)
                    .setGroup(users.lookupPrincipalByGroupName(GROUP));
            return new Unprivileged(dir, jar, (Integer) Files.getAttribute(dir, "unix:uid"));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot prepare " + dir + " for user " + USER, e);
        }
    }

    /** The directory {@value #USER} owns: where its sockets go. */
    Path dir() {
        return dir;
    }

    /** {@code prefix... setpriv ... java -jar COPY serve args...}. */
    List<String> serve(List<String> prefix, List<String> args) {
        List<String> asUser = new ArrayList<>(prefix);
        asUser.addAll(List.of(SETPRIV, "--reuid=" + USER, "--regid=" + GROUP, "--clear-groups", "--reset-env"));
        return Serve.command(asUser, jar, args);
    }

    /** Checks from /proc that {@code pid} runs as {@value #USER} with no effective capability. */
    void assertRunsUnprivileged(ProcessUnderTest p) {
        String status;
        try {
            status = Files.readString(Path.of("/proc", String.valueOf(p.pid()), "status"));
        } catch (IOException e) {
            throw new AssertionError(p.name() + " is gone" + p.tail(), e);
        }
        Matcher ids = UID.matcher(status);
        Matcher caps = CAP_EFF.matcher(status);
        if (!ids.find() || !caps.find()) {
            throw new AssertionError("no Uid/CapEff in /proc/" + p.pid() + "/status:\n" + status);
        }
        assertEquals(uid, Integer.parseInt(ids.group(2)), p.name() + "'s effective uid");
        assertEquals(0, Long.parseLong(caps.group(1), 16), p.name() + "'s effective capabilities (CapEff)");
    }
}
