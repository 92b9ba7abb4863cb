package org.jvhost.host.systemd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.DatagramPacket;
import java.net.SocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.newsclub.net.unix.AFUNIXDatagramSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;

/** The sd_notify datagrams, received on a test-owned socket as systemd would receive them. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ServiceNotifierTest {
    @TempDir
    Path dir;

    @Test
    void sendsEachStateAsOneDatagramToAPathSocket() throws IOException {
        Path path = dir.resolve("notify");
        try (AFUNIXDatagramSocket manager = bound(AFUNIXSocketAddress.of(path));
             ServiceNotifier notifier = ServiceNotifier.to(path.toString())) {
            assertTrue(notifier.enabled());
            notifier.ready("serving 2 device(s)");
            assertEquals("READY=1\nSTATUS=serving 2 device(s)", receive(manager));
            notifier.reloading();
            assertEquals("RELOADING=1", receive(manager));
            notifier.stopping();
            assertEquals("STOPPING=1\nSTATUS=stopping", receive(manager));
        }
    }

    @Test
    void anAtSignMeansTheAbstractNamespace() throws IOException {
        String name = "jvhost-notify-test-" + UUID.randomUUID();
        try (AFUNIXDatagramSocket manager = bound(AFUNIXSocketAddress.inAbstractNamespace(name));
             ServiceNotifier notifier = ServiceNotifier.to("@" + name)) {
            notifier.ready("serving 0 device(s)");
            assertEquals("READY=1\nSTATUS=serving 0 device(s)", receive(manager));
        }
    }

    @Test
    void aStatusCannotAddAssignments() throws IOException {
        Path path = dir.resolve("notify");
        try (AFUNIXDatagramSocket manager = bound(AFUNIXSocketAddress.of(path));
             ServiceNotifier notifier = ServiceNotifier.to(path.toString())) {
            notifier.ready("two\nSTOPPING=1");
            assertEquals("READY=1\nSTATUS=two STOPPING=1", receive(manager));
        }
    }

    @Test
    void withoutNotifySocketNothingIsSent() {
        for (String unset : new String[] {null, ""}) {
            try (ServiceNotifier notifier = ServiceNotifier.to(unset)) {
                assertFalse(notifier.enabled());
                assertFalse(notifier.send("READY=1"));
            }
        }
    }

    @Test
    void aRelativePathIsRefusedNotGuessed() {
        try (ServiceNotifier notifier = ServiceNotifier.to("run/notify")) {
            assertFalse(notifier.enabled());
        }
    }

    @Test
    void aManagerThatIsGoneCostsAWarningNotAnException() throws IOException {
        Path path = dir.resolve("notify"); // nobody listens there
        try (ServiceNotifier notifier = ServiceNotifier.to(path.toString())) {
            assertTrue(notifier.enabled());
            assertFalse(notifier.send("READY=1"));
            notifier.ready("still serving"); // no exception either
        }
    }

    private static AFUNIXDatagramSocket bound(SocketAddress address) throws IOException {
        AFUNIXDatagramSocket socket = AFUNIXDatagramSocket.newInstance();
        socket.bind(address);
        socket.setSoTimeout(5_000);
        return socket;
    }

    private static String receive(AFUNIXDatagramSocket socket) throws IOException {
        DatagramPacket packet = new DatagramPacket(new byte[4096], 4096);
        socket.receive(packet);
        return new String(packet.getData(), 0, packet.getLength(), StandardCharsets.UTF_8);
    }
}
