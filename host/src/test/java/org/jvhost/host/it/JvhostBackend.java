package org.jvhost.host.it;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * jvhost under test: {@code java -jar jvhost.jar serve --device loopback:socket=SOCK,queues=N}
 * (or {@code connect=SOCK} when the front-end listens), pinned to {@link Peers#BACK_END_CPU}. The jar
 * comes from the system property {@code jvhost.jar}, which failsafe sets to {@code host/target/jvhost.jar}.
 *
 * <p>A stale socket file left by a killed instance is not removed here: coping with it is part of
 * what a restarted daemon is tested for.
 */
public final class JvhostBackend implements Backend {

    @Override
    public String name() {
        return "jvhost";
    }

    @Override
    public void assumeAvailable() {
        Peers.assumeInstalled(Peers.TASKSET, "util-linux");
    }

    @Override
    public ProcessUnderTest start(String name, Path socket, int queues, Role role, Path logDir) {
        String device = "loopback:" + (role == Role.LISTEN ? "socket=" : "connect=") + socket + ",queues=" + queues;
        List<String> cmd = Serve.command(Serve.ON_BACK_END_CPU, List.of("--device", device));
        Object stale = Peers.fileKey(socket);
        ProcessUnderTest p = ProcessUnderTest.start(name, cmd, logDir);
        try {
            if (role == Role.LISTEN) {
                Peers.awaitNewFile(socket, stale, Duration.ofSeconds(30), p);
            }
            return p;
        } catch (RuntimeException | Error e) {
            p.close();
            throw e;
        }
    }
}
