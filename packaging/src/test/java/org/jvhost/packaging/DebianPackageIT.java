package org.jvhost.packaging;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.InputStream;
import java.net.DatagramPacket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.jvhost.host.cli.Main;
import org.newsclub.net.unix.AFUNIXDatagramSocket;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;
import picocli.CommandLine;

/**
 * The Debian package as an operator gets it: installed with dpkg on this machine, its commands run
 * from the installed files (as the jvhost user it creates), its unit checked by systemd-analyze, and
 * purged without a trace. systemd need not be PID 1: READY=1 is received on a test-owned
 * $NOTIFY_SOCKET. Needs root (dpkg); skipped otherwise, and when jvhost is already installed here.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class DebianPackageIT {
    private static final Path DEB = Path.of(System.getProperty("jvhost.deb", "target/jvhost.deb"));
    private static final Path LAUNCHER = Path.of("/usr/bin/jvhost");
    private static final Path UNIT = Path.of("/lib/systemd/system/jvhost.service");
    private static final Path DROP_IN_DIR = Path.of("/etc/systemd/system/jvhost.service.d");
    private static final long COMMAND_SECONDS = 60;

    private static boolean installed;

    @BeforeAll
    static void install() throws IOException, InterruptedException {
        assumeTrue("0".equals(run("id", "-u").output.trim()), "the Debian package test needs root (dpkg -i, --purge)");
        assumeTrue(run("dpkg-query", "-W", "jvhost").status != 0,
                "jvhost is installed on this machine already; the package test installs and purges its own");
        assertTrue(Files.isRegularFile(DEB), DEB + " does not exist: run the package phase first");
        Result dpkg = run("dpkg", "-i", DEB.toString());
        installed = dpkg.status == 0;
        assertEquals(0, dpkg.status, "dpkg -i " + DEB + ":\n" + dpkg.output);
    }

    @AfterAll
    static void purgeIfLeft() throws IOException, InterruptedException {
        if (installed) {
            run("dpkg", "--purge", "jvhost");
        }
    }

    @Test
    @Order(1)
    void installsTheCommandItsUserManPagesAndCompletion() throws IOException, InterruptedException {
        Result version = run(LAUNCHER.toString(), "--version");
        assertEquals(0, version.status, version.output);
        assertTrue(version.output.matches("jvhost \\S+ \\(commit ([0-9a-f]{7,40}(-dirty)?|unknown), device SPI \\d+\\.\\d+\\)\\R"),
                version.output);
        Result devices = run(LAUNCHER.toString(), "devices");
        assertEquals(0, devices.status, devices.output);
        assertTrue(devices.output.contains("loopback") && devices.output.contains("net"), devices.output);

        assertEquals(0, run("getent", "passwd", "jvhost").status, "the jvhost user");
        Result groups = run("id", "-nG", "jvhost");
        assertTrue(List.of(groups.output.trim().split(" ")).contains("kvm"), "jvhost's groups: " + groups.output);

        for (String page : commandNames(Main.documentedCommands())) {
            Path man = Path.of("/usr/share/man/man1", page + ".1.gz");
            try (InputStream in = new GZIPInputStream(Files.newInputStream(man))) {
                String troff = new String(in.readAllBytes(), StandardCharsets.UTF_8);
                String title = page.toUpperCase().replace("-", "\\-"); // troff escapes hyphens
                assertTrue(troff.contains(".TH \"" + title + "\" \"1\""), man + " is no man page:\n" + troff);
            }
        }
        Result completion = run("bash", "-c", "source /usr/share/bash-completion/completions/jvhost && complete -p jvhost");
        assertEquals(0, completion.status, completion.output);
        assertTrue(Files.isDirectory(Path.of("/usr/share/jvhost/plugins")));
        Result conffiles = run("dpkg-query", "-W", "-f=${Conffiles}", "jvhost");
        assertTrue(conffiles.output.contains("/etc/jvhost/jvhost.conf"), "conffiles: " + conffiles.output);
    }

    @Test
    @Order(2)
    void theUnitAndItsNetDropInPassSystemdAnalyzeVerify() throws IOException, InterruptedException {
        assumeTrue(run("sh", "-c", "command -v systemd-analyze").status == 0, "systemd-analyze is not installed");
        assertVerifies();
        Files.createDirectories(DROP_IN_DIR);
        Files.copy(Path.of("/usr/share/jvhost/systemd/net-tap.conf"), DROP_IN_DIR.resolve("net-tap.conf"));
        assertVerifies(); // purge removes the drop-in directory (checked below)
    }

    private static void assertVerifies() throws IOException, InterruptedException {
        Result verify = run("systemd-analyze", "verify", UNIT.toString());
        assertEquals(0, verify.status, "systemd-analyze verify " + UNIT + ":\n" + verify.output);
        assertFalse(verify.output.contains("jvhost.service"), "systemd-analyze verify " + UNIT + ":\n" + verify.output);
    }

    @Test
    @Order(3)
    void serveAsTheJvhostUserSaysReadyOnceItsDeviceListensAndStoppingAtTheEnd(@TempDir Path tmp)
            throws IOException, InterruptedException {
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwx--x--x")); // @TempDir is 0700
        Path dir = Files.createDirectory(tmp.resolve("run"));
        run("chown", "jvhost:jvhost", dir.toString());
        Path device = dir.resolve("lo.sock");
        Path control = dir.resolve("control.sock");
        Path config = dir.resolve("jvhost.conf");
        Files.writeString(config, "[host]\ncontrol = " + control + "\n\n[device lo]\ntype = loopback\nsocket = " + device + "\n");
        Path notify = dir.resolve("notify");
        try (AFUNIXDatagramSocket manager = AFUNIXDatagramSocket.newInstance()) {
            manager.bind(AFUNIXSocketAddress.of(notify));
            Files.setPosixFilePermissions(notify, PosixFilePermissions.fromString("rwxrwxrwx"));
            manager.setSoTimeout(30_000);
            ProcessBuilder serve = new ProcessBuilder("setpriv", "--reuid=jvhost", "--regid=jvhost", "--init-groups", "--",
                    LAUNCHER.toString(), "serve", "--config", config.toString())
                    .redirectErrorStream(true).redirectOutput(tmp.resolve("serve.log").toFile());
            serve.environment().put("NOTIFY_SOCKET", notify.toString());
            // a watchdog interval of 10 min: one WATCHDOG=1 at once (the loops answered), the next long after the test
            serve.environment().put("WATCHDOG_USEC", "600000000");
            Process process = serve.start();
            try {
                assertEquals("READY=1\nSTATUS=serving 1 device(s)", receive(manager, tmp));
                assertEquals("WATCHDOG=1", receive(manager, tmp), "every worker and control loop answered");
                try (AFUNIXSocket frontEnd = AFUNIXSocket.connectTo(AFUNIXSocketAddress.of(device))) {
                    assertTrue(frontEnd.isConnected(), "the device listens once READY=1 is sent");
                }
                Result list = run(LAUNCHER.toString(), "ctl", "--control", control.toString(), "list");
                assertEquals(0, list.status, list.output);
                assertTrue(list.output.contains("lo"), list.output);

                run("kill", "-HUP", String.valueOf(process.pid()));
                assertEquals("RELOADING=1", receive(manager, tmp));
                assertEquals("READY=1\nSTATUS=serving (after SIGHUP)", receive(manager, tmp));

                process.destroy(); // SIGTERM
                assertEquals("STOPPING=1\nSTATUS=stopping", receive(manager, tmp));
                assertTrue(process.waitFor(COMMAND_SECONDS, TimeUnit.SECONDS), "serve did not stop on SIGTERM");
                assertEquals(0, process.exitValue(), Files.readString(tmp.resolve("serve.log")));
                assertFalse(Files.exists(device), "serve removes its socket file when it stops");
            } finally {
                process.destroyForcibly();
                process.waitFor(COMMAND_SECONDS, TimeUnit.SECONDS);
            }
        }
    }

    private static String receive(AFUNIXDatagramSocket socket, Path logDir) throws IOException {
        DatagramPacket packet = new DatagramPacket(new byte[4096], 4096);
        try {
            socket.receive(packet);
        } catch (SocketTimeoutException e) {
            throw new AssertionError("no notification within 30 s; serve's output:\n"
                    + Files.readString(logDir.resolve("serve.log")), e);
        }
        return new String(packet.getData(), 0, packet.getLength(), StandardCharsets.UTF_8);
    }

    @Test
    @Order(4)
    void purgeLeavesNothingBehind() throws IOException, InterruptedException {
        List<Path> files = new ArrayList<>();
        for (String line : run("dpkg-query", "-L", "jvhost").output.split("\n")) {
            if (line.startsWith("/")) {
                files.add(Path.of(line));
            }
        }
        assertTrue(files.contains(LAUNCHER), "dpkg-query -L jvhost: " + files);
        Result purge = run("dpkg", "--purge", "jvhost");
        assertEquals(0, purge.status, purge.output);
        installed = false;
        for (Path f : files) {
            // shared directories (/usr/bin, /etc) stay; everything of jvhost's is gone
            boolean ours = f.toString().contains("jvhost");
            assertFalse(ours && Files.exists(f), f + " is left after dpkg --purge jvhost");
        }
        assertFalse(Files.exists(DROP_IN_DIR), DROP_IN_DIR + " is left after the purge");
        assertFalse(Files.exists(Path.of("/etc/jvhost")), "/etc/jvhost is left after the purge");
        assertEquals(2, run("getent", "passwd", "jvhost").status, "the jvhost user is left after the purge");
        assertEquals(2, run("getent", "group", "jvhost").status, "the jvhost group is left after the purge");
    }

    /** {@code jvhost}, {@code jvhost-serve}, ...: every command of the tree, as its man page is named. */
    private static List<String> commandNames(CommandLine command) {
        List<String> names = new ArrayList<>(List.of(command.getCommandSpec().qualifiedName("-")));
        command.getSubcommands().values().forEach(sub -> names.addAll(commandNames(sub)));
        return names;
    }

    private record Result(int status, String output) {
    }

    /** Runs a command to its end (at most {@value #COMMAND_SECONDS} s); stdout and stderr together. */
    private static Result run(String... command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        p.getOutputStream().close();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(COMMAND_SECONDS, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError(String.join(" ", command) + " did not finish in " + COMMAND_SECONDS + " s");
        }
        return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8));
    }
}
