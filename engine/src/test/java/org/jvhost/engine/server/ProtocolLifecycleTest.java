package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;
import org.jvhost.engine.protocol.ConfigLayout;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.MemoryTableLayout;
import org.jvhost.engine.protocol.MessageHeader;
import org.jvhost.engine.protocol.Payloads;
import org.jvhost.engine.protocol.ProtocolFeatures;
import org.jvhost.engine.protocol.U64Layout;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.newsclub.net.unix.AFUNIXServerSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;

/** The protocol over a real socket: a Host with a recording device, driven by a ScriptedFrontend. */
@Timeout(30)
class ProtocolLifecycleTest {
    @TempDir
    Path dir;
    Host host;
    RecordingDevice device;
    DeviceContext ctx;
    Path socket;

    @BeforeEach
    void start() throws IOException {
        host = new Host(2);
        device = new RecordingDevice(2, 12);
        socket = dir.resolve("dev.sock");
        ctx = host.newContext("rec@" + socket);
        host.addDevice(ctx, device, socket, Host.Mode.LISTEN);
    }

    @AfterEach
    void stop() {
        host.close();
    }

    @Test
    void negotiatesFeaturesAndProtocolFeatures() throws Exception {
        try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
            fe.setOwner();
            assertFalse(fe.isClosedByPeer(200), "a valid request keeps the connection");
            long features = fe.getFeatures();
            long logAll = 1L << 26; // VHOST_F_LOG_ALL: the host logs for every device
            assertEquals((1L << 5) | VirtioFeatures.HOST_TRANSPORT | VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES | logAll,
                    features);
            long proto = fe.getProtocolFeatures();
            assertEquals(ProtocolFeatures.IMPLEMENTED | ProtocolFeatures.CONFIG, proto);
            fe.setFeatures(features);
            device.await("ack 0x" + Long.toHexString(features & ~(VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES | logAll)));
            fe.setProtocolFeatures(proto);
            assertEquals(2, fe.getQueueNum());
        }
    }

    @Test
    void unofferedFeatureIsRefused() throws Exception {
        try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
            fe.setFeatures(VirtioFeatures.VHOST_USER_PROTOCOL_FEATURES);
            fe.setProtocolFeatures(ProtocolFeatures.REPLY_ACK);
            ScriptedFrontend.RefusedException e = assertThrows(ScriptedFrontend.RefusedException.class,
                    () -> fe.setFeatures(VirtioFeatures.ACCESS_PLATFORM));
            assertEquals(1, e.ack());
        }
    }

    @Test
    void replyAckAcksSuccessAndRefusesUnknownRequests() throws Exception {
        try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
            fe.setFeatures(fe.getFeatures());
            fe.setProtocolFeatures(ProtocolFeatures.REPLY_ACK | ProtocolFeatures.MQ);
            assertEquals(0, fe.call(FrontendRequest.SET_OWNER, null).u64());
            assertEquals(1, fe.call(FrontendRequest.SET_VRING_ENDIAN, U64Layout.of(0)).u64(), "unimplemented request");
            assertEquals(0, fe.call(FrontendRequest.GET_CONFIG, ConfigLayout.of(0, 0, new byte[4])).payload().remaining(),
                    "CONFIG not negotiated: the spec's zero-length GET_CONFIG reply");
            ScriptedFrontend.Reply r = fe.call(FrontendRequest.of(44), null);
            assertEquals(1, r.u64());
            // an undefined code is refused the same way, and the connection keeps working
            fe.send(77, MessageHeader.VERSION | MessageHeader.NEED_REPLY, null);
            assertEquals(1, fe.readReply().u64());
            assertEquals(2, fe.getQueueNum());
        }
    }

    @Test
    void configIsRangeChecked() throws Exception {
        try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
            fe.setFeatures(fe.getFeatures());
            fe.setProtocolFeatures(ProtocolFeatures.REPLY_ACK | ProtocolFeatures.CONFIG);
            ScriptedFrontend.Reply ok = fe.call(FrontendRequest.GET_CONFIG, ConfigLayout.of(4, 0, new byte[8]));
            assertEquals(4, ConfigLayout.offset(ok.payload()));
            assertEquals(11, ConfigLayout.bytes(ok.payload())[7]);
            assertEquals(0, fe.call(FrontendRequest.GET_CONFIG, ConfigLayout.of(8, 0, new byte[8])).payload().remaining(),
                    "out of range: the spec's zero-length GET_CONFIG reply");
            // as QEMU sends it, without NEED_REPLY: still a zero-length reply, and the connection stays
            fe.send(FrontendRequest.GET_CONFIG.code(), MessageHeader.VERSION, ConfigLayout.of(12, 0, new byte[4]));
            assertEquals(0, fe.readReply().payload().remaining());
            assertEquals(0, fe.call(FrontendRequest.SET_OWNER, null).u64(), "the connection still works");
        }
    }

    @Test
    void unknownRequestWithoutReplyAckClosesTheConnection() throws Exception {
        try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
            fe.send(FrontendRequest.SET_VRING_ENDIAN.code(), MessageHeader.VERSION, U64Layout.of(0));
            assertTrue(fe.isClosedByPeer(3000));
        }
        device.await("reset");
        assertStillServes();
    }

    @Test
    void badVersionClosesTheConnectionAndTheHostAcceptsTheNext() throws Exception {
        try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
            fe.send(FrontendRequest.GET_FEATURES.code(), 0x2, null);
            assertTrue(fe.isClosedByPeer(3000));
        }
        assertStillServes();
    }

    @Test
    void oversizedMessageClosesTheConnection() throws Exception {
        try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
            ByteBuffer h = ByteBuffer.allocate(12).order(MessageHeader.ORDER);
            new MessageHeader(FrontendRequest.SET_FEATURES.code(), 1, 1 << 20).encode(h);
            fe.sendRaw(h.array());
            assertTrue(fe.isClosedByPeer(3000));
        }
        assertStillServes();
    }

    @Test
    void wrongFdCountsCloseTheConnectionWithoutLeakingFds() throws Exception {
        assertStillServes();
        awaitIdle();
        int before = openFds();
        int efd = LinuxSys.eventfd(LinuxSys.EFD_CLOEXEC);
        try {
            try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
                fe.send(FrontendRequest.SET_FEATURES.code(), 1, U64Layout.of(0), efd);
                assertTrue(fe.isClosedByPeer(3000), "an fd on SET_FEATURES");
            }
            try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
                // a table of 2 regions with 1 fd
                ByteBuffer table = Payloads.allocate(MemoryTableLayout.sizeFor(2)).putInt(0, 2);
                fe.send(FrontendRequest.SET_MEM_TABLE.code(), 1, table, efd);
                assertTrue(fe.isClosedByPeer(3000), "too few fds for SET_MEM_TABLE");
            }
            try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
                fe.send(FrontendRequest.SET_VRING_CALL.code(), 1, U64Layout.of(0));
                assertTrue(fe.isClosedByPeer(3000), "SET_VRING_CALL without fd and without the no-fd bit");
            }
        } finally {
            LinuxSys.closeQuietly(efd);
        }
        assertStillServes();
        awaitIdle();
        awaitFdCount(before);
    }

    @Test
    void disconnectResetsTheDeviceAndLeaksNoFds() throws Exception {
        assertStillServes(); // warm up lazily created JVM and junixsocket fds
        awaitIdle();
        int before = openFds();
        ScriptedFrontend fe = ScriptedFrontend.connect(socket);
        fe.setFeatures(fe.getFeatures());
        fe.setProtocolFeatures(ProtocolFeatures.REPLY_ACK);
        fe.setVringCall(0);
        fe.setVringCall(1);
        fe.setVringCall(0); // replaces the first one, which must be closed
        int err = LinuxSys.eventfd(LinuxSys.EFD_CLOEXEC);
        fe.send(FrontendRequest.SET_VRING_ERR.code(), MessageHeader.VERSION | MessageHeader.NEED_REPLY,
                U64Layout.of(1), err);
        assertEquals(0, fe.readReply().u64());
        LinuxSys.closeQuietly(err);
        assertTrue(openFds() > before + 5, "the back-end holds its copies of the 4 eventfds, the front-end its own");
        fe.close();
        device.await("reset");
        awaitIdle();
        awaitFdCount(before);
    }

    @Test
    void secondFrontendIsTurnedAwayWhileOneIsServed() throws Exception {
        try (ScriptedFrontend first = ScriptedFrontend.connect(socket)) {
            first.getFeatures();
            try (ScriptedFrontend second = ScriptedFrontend.connect(socket)) {
                assertTrue(second.isClosedByPeer(3000));
            }
            first.getFeatures();
        }
        assertStillServes();
    }

    @Test
    void secondDeviceKeepsWorkingWhileTheFirstGetsGarbage() throws Exception {
        RecordingDevice other = new RecordingDevice(1, 0);
        Path otherSocket = dir.resolve("other.sock");
        DeviceContext otherCtx = host.newContext("other");
        host.addDevice(otherCtx, other, otherSocket, Host.Mode.LISTEN);
        try (ScriptedFrontend good = ScriptedFrontend.connect(otherSocket)) {
            long offered = good.getOfferedFeatures();
            for (int i = 0; i < 5; i++) {
                try (ScriptedFrontend bad = ScriptedFrontend.connect(socket)) {
                    bad.sendRaw(new byte[] {(byte) 0xff, 0x13, 0x37, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3});
                    assertTrue(bad.isClosedByPeer(3000));
                }
                assertEquals(offered, good.getOfferedFeatures()); // answered, and unchanged
            }
            assertTrue(host.status(otherCtx).connected());
            assertEquals(1, host.status(otherCtx).sessions());
        }
    }

    @Test
    void listenRefusesAPathWhereSomeoneListensAndReplacesAStaleSocket() throws Exception {
        RecordingDevice other = new RecordingDevice(1, 0);
        IOException e = assertThrows(IOException.class,
                () -> host.addDevice(host.newContext("dup"), other, socket, Host.Mode.LISTEN));
        assertTrue(e.getMessage().contains(socket.toString()), e.getMessage());
        // a socket file nobody listens on any more, as a crashed daemon leaves it
        Path stale = dir.resolve("stale.sock");
        AFUNIXServerSocket crashed = AFUNIXServerSocket.newInstance();
        crashed.setDeleteOnClose(false);
        crashed.bind(AFUNIXSocketAddress.of(stale));
        crashed.close();
        assertTrue(Files.exists(stale));
        host.addDevice(host.newContext("stale"), other, stale, Host.Mode.LISTEN);
        try (ScriptedFrontend fe = ScriptedFrontend.connect(stale)) {
            fe.getFeatures();
        }
    }

    @Test
    void listenLeavesAFileThatIsNotASocketAlone() throws Exception {
        Path file = dir.resolve("notes.txt");
        Files.writeString(file, "keep me");
        IOException e = assertThrows(IOException.class,
                () -> host.addDevice(host.newContext("typo"), new RecordingDevice(1, 0), file, Host.Mode.LISTEN));
        assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("not a socket"), e.getMessage());
        assertEquals("keep me", Files.readString(file));
    }

    @Test
    void socketFilesAreOwnerOnlyByDefaultAndTakeTheModeAsked() throws Exception {
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(socket)));
        Path shared = dir.resolve("shared.sock");
        host.addDevice(host.newContext("shared"), new RecordingDevice(1, 0), shared, Host.Mode.LISTEN,
                new SocketAccess(0660, null, Set.of()));
        assertEquals("rw-rw----", PosixFilePermissions.toString(Files.getPosixFilePermissions(shared)));
        Path grouped = dir.resolve("grouped.sock");
        IOException e = assertThrows(IOException.class, () -> host.addDevice(host.newContext("g"),
                new RecordingDevice(1, 0), grouped, Host.Mode.LISTEN, new SocketAccess(0660, "no-such-group-jvhost", Set.of())));
        assertTrue(e.getMessage().contains(grouped.toString()) && e.getMessage().contains("no-such-group-jvhost"),
                e.getMessage());
        assertFalse(Files.exists(grouped), "a socket that could not be set up is removed again");
    }

    @Test
    void aFrontendWhoseUidIsNotAllowedIsRefusedAndOthersAreUnaffected() throws Exception {
        long me = new com.sun.security.auth.module.UnixSystem().getUid();
        Path guarded = dir.resolve("guarded.sock");
        DeviceContext g = host.newContext("guarded");
        host.addDevice(g, new RecordingDevice(1, 0), guarded, Host.Mode.LISTEN,
                new SocketAccess(0600, null, Set.of((int) me + 12345)));
        try (ScriptedFrontend fe = ScriptedFrontend.connect(guarded)) {
            assertTrue(fe.isClosedByPeer(3000), "uid " + me + " is not on the list");
        }
        assertEquals(0, host.status(g).sessions());
        assertStillServes();
        Path mine = dir.resolve("mine.sock");
        host.addDevice(host.newContext("mine"), new RecordingDevice(1, 0), mine, Host.Mode.LISTEN,
                new SocketAccess(0600, null, Set.of((int) me)));
        try (ScriptedFrontend fe = ScriptedFrontend.connect(mine)) {
            assertTrue(fe.getFeatures() != 0, "uid " + me + " is on the list");
        }
    }

    @Test
    void halfAMessageHoldsNoThreadAndIsCutOffAfterTheDeadline() throws Exception {
        RecordingDevice other = new RecordingDevice(1, 0);
        Path otherSocket = dir.resolve("other.sock");
        DeviceContext otherCtx = host.newContext("other");
        host.addDevice(otherCtx, other, otherSocket, Host.Mode.LISTEN);
        try (ScriptedFrontend slow = ScriptedFrontend.connect(socket);
             ScriptedFrontend good = ScriptedFrontend.connect(otherSocket)) {
            slow.sendRaw(new byte[] {(byte) FrontendRequest.GET_FEATURES.code(), 0, 0, 0, 1}); // 5 of 12 header bytes
            long t0 = System.nanoTime();
            for (int i = 0; i < 20; i++) {
                assertTrue(good.getFeatures() != 0, "the other device answers while one waits for the rest");
            }
            try (ScriptedFrontend again = ScriptedFrontend.connect(otherSocket)) {
                assertTrue(again.isClosedByPeer(3000), "(the other device serves one front-end at a time)");
            }
            assertTrue(slow.isClosedByPeer(10_000), "the half message is cut off");
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(ms >= 4000, "not before the deadline: " + ms + " ms");
            assertTrue(good.getFeatures() != 0);
        }
        awaitIdle();
        assertStillServes();
    }

    @Test
    void closeRemovesTheSocketFile() {
        assertTrue(Files.exists(socket));
        host.close();
        assertFalse(Files.exists(socket));
    }

    @Test
    void connectModeReconnectsWhenTheFrontendListensAgain() throws Exception {
        RecordingDevice other = new RecordingDevice(1, 0);
        Path feSocket = dir.resolve("frontend.sock");
        DeviceContext c = host.newContext("client");
        host.addDevice(c, other, feSocket, Host.Mode.CONNECT); // nobody listens yet: retries with back-off
        Thread.sleep(300);
        for (int round = 0; round < 2; round++) {
            try (AFUNIXServerSocket server = AFUNIXServerSocket.bindOn(AFUNIXSocketAddress.of(feSocket));
                 ScriptedFrontend fe = ScriptedFrontend.accept(server)) {
                fe.setFeatures(fe.getFeatures());
                other.await("ack 0x" + Long.toHexString((1L << 5) | VirtioFeatures.HOST_TRANSPORT));
            }
            other.await("reset");
            Files.deleteIfExists(feSocket);
        }
        assertEquals(2, host.status(c).sessions());
    }

    /** Waits until the host has finished with the last connection (it cleans up on its own thread). */
    private void awaitIdle() throws InterruptedException {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (host.status(ctx).connected() && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertFalse(host.status(ctx).connected(), "the host still serves the last front-end");
    }

    private void assertStillServes() throws IOException {
        try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
            assertTrue(fe.getFeatures() != 0);
        }
    }

    static int openFds() {
        String[] l = new File("/proc/self/fd").list();
        return l == null ? -1 : l.length;
    }

    /**
     * Waits up to 5 s for the process's open fds to fall to {@code max} or below; returns the last count
     * read (one sample, so a file another thread of the test JVM opens after it is not blamed on the host).
     */
    static int awaitFdsAtMost(int max) throws InterruptedException {
        long deadline = System.nanoTime() + 5_000_000_000L;
        int n = openFds();
        while (n > max && System.nanoTime() < deadline) {
            Thread.sleep(20);
            n = openFds();
        }
        return n;
    }

    /** The back-end cleans up on its control thread after the socket closes: give it a moment. */
    static void awaitFdCount(int expected) throws InterruptedException {
        long deadline = System.nanoTime() + 5_000_000_000L;
        int n = openFds();
        while (n != expected && System.nanoTime() < deadline) {
            Thread.sleep(20);
            n = openFds();
        }
        assertEquals(expected, n, "open fds after the front-end left");
    }
}
