package org.jvhost.host.it;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.regex.Pattern;

/**
 * The reference back-end: DPDK testpmd with a {@code net_vhost} port and the {@code macswap}
 * forwarder, i.e. every frame received from the front-end goes back to it with source and
 * destination MAC swapped. Runs non-interactively (forwarding starts at once; it waits on stdin),
 * pinned to {@link Peers#BACK_END_CPU}.
 */
public final class DpdkVhostBackend implements Backend {

    private static final Pattern FORWARDING = Pattern.compile("Press enter to exit");

    @Override
    public String name() {
        return "dpdk";
    }

    @Override
    public void assumeAvailable() {
        Peers.assumeInstalled(Peers.TESTPMD, "dpdk-dev");
    }

    @Override
    public ProcessUnderTest start(String name, Path socket, int queues, Role role, Path logDir) {
        if (role == Role.LISTEN) {
            // rte_vhost refuses to bind over an existing file and, by design, never deletes one
            // (it cannot know the file is stale), so a restarted DPDK back-end needs it removed.
            try {
                Files.deleteIfExists(socket);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        int cpu = Peers.BACK_END_CPU;
        String vdev = "net_vhost0,iface=" + socket + ",queues=" + queues + (role == Role.CONNECT ? ",client=1" : "");
        List<String> cmd = Peers.pinnedLineBuffered(cpu, List.of(Peers.TESTPMD,
                "--lcores", "0@" + cpu + ",1@" + cpu, "--no-pci", "--no-huge", "-m", "256",
                "--file-prefix", Peers.uniqueName("be"), "--vdev", vdev, "--",
                "--port-topology=loop", "--forward-mode=macswap", "--disable-link-check",
                "--rxq=" + queues, "--txq=" + queues, "--total-num-mbufs=16384"));
        ProcessUnderTest p = ProcessUnderTest.start(name, cmd, logDir);
        try {
            p.await(FORWARDING, 0, Duration.ofSeconds(30));
            if (role == Role.LISTEN) {
                Peers.awaitNewFile(socket, null, Duration.ofSeconds(10), p);
            }
            return p;
        } catch (RuntimeException | Error e) {
            p.close();
            throw e;
        }
    }
}
