package org.jvhost.host.it;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A network namespace of the test's own, {@code jvt-<random>}, with a private /24 whose {@code .1} is the
 * TAP's side and {@code .2} the guest. Everything the net tests create (the TAP, addresses, neighbour
 * entries, listeners) lives inside it, so nothing outside the namespace is touched;
 * {@link #close()} deletes it and with it anything left inside.
 */
public final class NetNamespace implements AutoCloseable {
    private static final String IP = "/usr/sbin/ip";
    private static final SecureRandom RANDOM = new SecureRandom();

    private final String name;
    private final int subnet;

    private NetNamespace(String name, int subnet) {
        this.name = name;
        this.subnet = subnet;
    }

    /** Creates {@code jvt-<random>} with its loopback up; skips the test if {@code ip} is missing or we are not root. */
    public static NetNamespace create() {
        Peers.assumeInstalled(IP, "iproute2");
        org.junit.jupiter.api.Assumptions.assumeTrue(Peers.isRoot(),
                "network-namespace and TAP tests need root (ip netns add, TUNSETIFF)");
        String name = String.format("jvt-%08x", RANDOM.nextInt());
        run(List.of(IP, "netns", "add", name));
        NetNamespace ns = new NetNamespace(name, 1 + RANDOM.nextInt(254));
        ns.exec("ip", "link", "set", "lo", "up");
        return ns;
    }

    public String name() {
        return name;
    }

    /** The TAP side's address, {@code 10.77.N.1}. */
    public String peerAddress() {
        return "10.77." + subnet + ".1";
    }

    /** The guest's address, {@code 10.77.N.2}. */
    public String guestAddress() {
        return "10.77." + subnet + ".2";
    }

    /** {@code command} run inside the namespace ({@code ip netns exec}), for {@link ProcessUnderTest#start}. */
    public List<String> inside(String... command) {
        List<String> cmd = new ArrayList<>(List.of(IP, "netns", "exec", name));
        cmd.addAll(List.of(command));
        return cmd;
    }

    /** Runs {@code command} inside the namespace (at most 30 s) and returns its output; fails on non-zero exit. */
    public String exec(String... command) {
        return run(inside(command));
    }

    /** Brings {@code tap} up with the peer address. */
    public void configureTap(String tap) {
        exec("ip", "link", "set", tap, "up");
        exec("ip", "addr", "add", peerAddress() + "/24", "dev", tap);
    }

    /** A counter of {@code dev} from sysfs as the namespace sees it, e.g. {@code rx_packets}. */
    public long counter(String dev, String counter) {
        return Long.parseLong(exec("cat", "/sys/class/net/" + dev + "/statistics/" + counter).trim());
    }

    private static String run(List<String> command) {
        try {
            Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("timed out: " + String.join(" ", command));
            }
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (p.exitValue() != 0) {
                throw new AssertionError(String.join(" ", command) + " exited with " + p.exitValue() + ": " + out);
            }
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted: " + command, e);
        }
    }

    /** Deletes the namespace; its TAP goes with it once the processes holding it (stopped first) are gone. */
    @Override
    public void close() {
        run(List.of(IP, "netns", "del", name));
    }
}
