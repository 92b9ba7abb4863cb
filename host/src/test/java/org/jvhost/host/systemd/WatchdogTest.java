package org.jvhost.host.systemd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.net.DatagramPacket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.newsclub.net.unix.AFUNIXDatagramSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;

/** WATCHDOG=1 on a test-owned notify socket: sent while the loops answer, withheld while they do not. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class WatchdogTest {
    @TempDir
    Path dir;

    @Test
    void pingsOnlyWhileEveryLoopAnswers() throws Exception {
        Path path = dir.resolve("notify");
        AtomicBoolean answering = new AtomicBoolean(true);
        try (AFUNIXDatagramSocket manager = AFUNIXDatagramSocket.newInstance()) {
            manager.bind(AFUNIXSocketAddress.of(path));
            manager.setSoTimeout(2_000);
            try (ServiceNotifier notifier = ServiceNotifier.to(path.toString());
                 Watchdog w = Watchdog.startIfAsked(Map.of(Watchdog.WATCHDOG_USEC, "200000"), notifier,
                         ms -> answering.get())) {
                assertEquals("WATCHDOG=1", receive(manager)); // every 100 ms
                assertEquals("WATCHDOG=1", receive(manager));
                answering.set(false);
                Thread.sleep(150); // a ping already decided may still arrive
                drain(manager);
                manager.setSoTimeout(500);
                assertThrows(SocketTimeoutException.class, () -> receive(manager), "pinged while a loop did not answer");
                answering.set(true);
                manager.setSoTimeout(2_000);
                assertEquals("WATCHDOG=1", receive(manager));
            }
        }
    }

    @Test
    void startsOnlyWhenAskedAndForThisProcess() {
        ServiceNotifier notifier = ServiceNotifier.to(dir.resolve("notify").toString());
        assertNull(Watchdog.startIfAsked(Map.of(), notifier, ms -> true));
        assertNull(Watchdog.startIfAsked(Map.of(Watchdog.WATCHDOG_USEC, "1000000", Watchdog.WATCHDOG_PID, "1"),
                notifier, ms -> true), "WATCHDOG_PID names another process");
        assertNull(Watchdog.startIfAsked(Map.of(Watchdog.WATCHDOG_USEC, "soon"), notifier, ms -> true));
        assertNull(Watchdog.startIfAsked(Map.of(Watchdog.WATCHDOG_USEC, "1000000"), ServiceNotifier.to(null),
                ms -> true), "no notify socket");
        assertEquals(1_000_000, Watchdog.intervalUsec(Map.of(Watchdog.WATCHDOG_USEC, "1000000",
                Watchdog.WATCHDOG_PID, Long.toString(ProcessHandle.current().pid()))));
    }

    private static void drain(AFUNIXDatagramSocket socket) throws IOException {
        socket.setSoTimeout(1);
        try {
            while (true) {
                receive(socket);
            }
        } catch (SocketTimeoutException empty) {
            // nothing left
        }
    }

    private static String receive(AFUNIXDatagramSocket socket) throws IOException {
        DatagramPacket packet = new DatagramPacket(new byte[4096], 4096);
        socket.receive(packet);
        return new String(packet.getData(), 0, packet.getLength(), StandardCharsets.UTF_8);
    }
}
