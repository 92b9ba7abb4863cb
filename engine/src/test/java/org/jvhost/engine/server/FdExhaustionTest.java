package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.DataInputStream;
import java.io.IOException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.MessageHeader;
import org.jvhost.engine.protocol.U64Layout;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.testkit.FullFdTable;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.FileDescriptorCast;

/**
 * The process at RLIMIT_NOFILE ({@link FullFdTable}). A front-end that connects then makes the host's
 * {@code accept} fail with EMFILE: that must only pause accepting, so once fds are free again the
 * waiting front-end is served, and later ones too. A message whose fd the kernel cannot install
 * (MSG_CTRUNC) ends that connection, and the device serves the next one.
 */
@Timeout(60)
class FdExhaustionTest {
    @TempDir
    Path dir;
    Host host;
    Path socket;
    RecordingDevice device = new RecordingDevice(2, 0);

    @BeforeEach
    void start() throws Exception {
        host = new Host(1);
        socket = dir.resolve("dev.sock");
        host.addDevice(host.newContext("dev"), device, socket, Host.Mode.LISTEN);
        FullFdTable.preload("org.jvhost.engine.server.ControlLoop$Timer");
    }

    @AfterEach
    void stop() {
        host.close();
    }

    @Test
    void aFrontEndArrivingAtTheFdLimitIsServedOnceFdsAreFree() throws Exception {
        int early = FullFdTable.unconnectedSocket();
        try (AFUNIXSocket s = FileDescriptorCast.unsafeUsing(early).as(AFUNIXSocket.class)) {
            try (FullFdTable full = FullFdTable.fill()) {
                FullFdTable.connect(early, socket); // lands in the backlog: the host's accept gets EMFILE
                Thread.sleep(300);
            }
            s.setSoTimeout(3000);
            assertEquals(MessageHeader.SIZE + 8, getFeatures(s), "GET_FEATURES reply size");
        }
        try (ScriptedFrontend later = ScriptedFrontend.connect(socket)) {
            assertEquals(device.features(), later.getFeatures() & device.features(), "a later front-end is served");
        }
    }

    @Test
    void aMessageWhoseFdTheKernelCannotInstallEndsItsConnectionAndTheNextIsServed() throws Exception {
        int call = LinuxSys.eventfd(LinuxSys.EFD_CLOEXEC);
        try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
            fe.getFeatures(); // the session is up
            boolean closed;
            try (FullFdTable full = FullFdTable.fill()) {
                fe.send(FrontendRequest.SET_VRING_CALL.code(), MessageHeader.VERSION, U64Layout.of(0), call);
                closed = fe.isClosedByPeer(3000);
            }
            assertTrue(closed, "the host kept a connection whose message lost its fd");
        } finally {
            LinuxSys.closeQuietly(call);
        }
        try (ScriptedFrontend next = ScriptedFrontend.connect(socket)) {
            assertEquals(device.features(), next.getFeatures() & device.features(), "the next front-end is served");
        }
    }

    /** Sends GET_FEATURES and reads the reply; returns its length. */
    private static int getFeatures(AFUNIXSocket s) throws IOException {
        ByteBuffer msg = ByteBuffer.allocate(MessageHeader.SIZE).order(MessageHeader.ORDER);
        new MessageHeader(FrontendRequest.GET_FEATURES.code(), MessageHeader.VERSION, 0).encode(msg);
        s.getOutputStream().write(msg.array());
        byte[] reply = new byte[MessageHeader.SIZE + 8];
        try {
            new DataInputStream(s.getInputStream()).readFully(reply);
        } catch (SocketTimeoutException e) {
            throw new AssertionError("no reply within 3 s to a front-end that connected while the process "
                    + "was out of fds: the host stopped accepting on the socket", e);
        }
        return reply.length;
    }
}
