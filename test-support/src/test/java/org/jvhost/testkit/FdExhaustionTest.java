package org.jvhost.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.jna.LastErrorException;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import java.io.DataInputStream;
import java.io.IOException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.MessageHeader;
import org.jvhost.engine.protocol.U64Layout;
import org.jvhost.engine.server.Host;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.newsclub.net.unix.AFSocket;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.FileDescriptorCast;

/**
 * The process at RLIMIT_NOFILE. A front-end that connects then makes the host's {@code accept} fail
 * with EMFILE: that must only pause accepting, so once fds are free again the waiting front-end is
 * served, and later ones too. A message whose fd the kernel cannot install (MSG_CTRUNC) ends that
 * connection, and the device serves the next one.
 *
 * <p>The fd table is filled for real: the soft limit is lowered to just above the highest open fd
 * (setrlimit, restored afterwards), then every free slot below it gets an eventfd.
 */
@Timeout(60)
class FdExhaustionTest {
    private static final int RLIMIT_NOFILE = 7;
    private static final int EMFILE = 24;
    private static final int AF_UNIX = 1;
    private static final int SOCK_STREAM = 1;
    private static final int SOCK_CLOEXEC = 0x80000;
    private static final int SOCKADDR_UN_SIZE = 110;

    static {
        Native.register(FdExhaustionTest.class, NativeLibrary.getInstance("c"));
    }

    private static native int getrlimit(int resource, long[] rlim) throws LastErrorException;

    private static native int setrlimit(int resource, long[] rlim) throws LastErrorException;

    private static native int socket(int domain, int type, int protocol) throws LastErrorException;

    private static native int connect(int fd, byte[] sockaddr, int length) throws LastErrorException;

    @TempDir
    Path dir;
    Host host;
    final List<Integer> filler = new ArrayList<>();
    long[] savedLimit;

    @AfterEach
    void stop() {
        freeFdTable();
        if (host != null) {
            host.close();
        }
    }

    @Test
    void aFrontEndArrivingAtTheFdLimitIsServedOnceFdsAreFree() throws Exception {
        host = new Host(1);
        Path socket = dir.resolve("dev.sock");
        RecordingDevice device = new RecordingDevice(2, 0);
        host.addDevice(host.newContext("dev"), device, socket, Host.Mode.LISTEN);
        preloadClasses();
        // a raw socket made now and connected below needs no new fd (junixsocket's connect would)
        int early = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        try (AFUNIXSocket s = FileDescriptorCast.unsafeUsing(early).as(AFUNIXSocket.class)) {
            fillFdTable();
            connect(early, sockaddr(socket), SOCKADDR_UN_SIZE); // lands in the backlog: accept gets EMFILE
            Thread.sleep(300);
            freeFdTable();

            s.setSoTimeout(3000);
            assertEquals(MessageHeader.SIZE + 8, getFeatures(s), "GET_FEATURES reply size");
        }
        try (ScriptedFrontend later = ScriptedFrontend.connect(socket)) {
            assertEquals(device.features(), later.getFeatures() & device.features(), "a later front-end is served");
        }
    }

    @Test
    void aMessageWhoseFdTheKernelCannotInstallEndsItsConnectionAndTheNextIsServed() throws Exception {
        host = new Host(1);
        Path socket = dir.resolve("dev.sock");
        RecordingDevice device = new RecordingDevice(2, 0);
        host.addDevice(host.newContext("dev"), device, socket, Host.Mode.LISTEN);
        preloadClasses();
        int call = LinuxSys.eventfd(LinuxSys.EFD_CLOEXEC);
        try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
            fe.getFeatures(); // the session is up
            fillFdTable();
            fe.send(FrontendRequest.SET_VRING_CALL.code(), MessageHeader.VERSION, U64Layout.of(0), call);
            boolean closed = fe.isClosedByPeer(3000);
            freeFdTable();
            assertTrue(closed, "the host kept a connection whose message lost its fd");
        } finally {
            LinuxSys.closeQuietly(call);
        }
        try (ScriptedFrontend next = ScriptedFrontend.connect(socket)) {
            assertEquals(device.features(), next.getFeatures() & device.features(), "the next front-end is served");
        }
    }

    /**
     * Loads the classes the host and this test use while no fd is free: loading a class from a
     * target/classes directory opens its file, which would fail then.
     */
    private static void preloadClasses() throws ClassNotFoundException {
        Class.forName("org.jvhost.engine.server.ControlLoop$Timer");
        Class.forName(NativeException.class.getName());
    }

    /** Sends GET_FEATURES and reads the reply; returns its length. */
    private static int getFeatures(AFSocket<?> s) throws IOException {
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

    /** A {@code struct sockaddr_un} for {@code path}: u16 family, then the NUL-terminated path. */
    private static byte[] sockaddr(Path path) {
        byte[] p = path.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
        byte[] a = new byte[SOCKADDR_UN_SIZE];
        a[0] = AF_UNIX;
        System.arraycopy(p, 0, a, 2, p.length);
        return a;
    }

    /** Lowers the soft fd limit to just above the highest open fd and fills every free slot below it. */
    private void fillFdTable() throws Exception {
        long[] lim = new long[2];
        getrlimit(RLIMIT_NOFILE, lim);
        savedLimit = lim.clone();
        long soft = Math.min(lim[0], highestOpenFd() + 16);
        setrlimit(RLIMIT_NOFILE, new long[] {soft, lim[1]});
        try {
            while (filler.size() <= soft) {
                filler.add(LinuxSys.eventfd(LinuxSys.EFD_CLOEXEC));
            }
            throw new AssertionError("the soft limit of " + soft + " fds was not reached");
        } catch (NativeException e) {
            assertEquals(EMFILE, e.errno(), "eventfd at the fd limit: " + e.getMessage());
        }
    }

    private void freeFdTable() {
        filler.forEach(LinuxSys::closeQuietly);
        filler.clear();
        if (savedLimit != null) {
            setrlimit(RLIMIT_NOFILE, savedLimit);
            savedLimit = null;
        }
    }

    private static long highestOpenFd() {
        String[] fds = new java.io.File("/proc/self/fd").list();
        long max = 0;
        for (String fd : fds == null ? new String[0] : fds) {
            max = Math.max(max, Long.parseLong(fd));
        }
        return max;
    }
}
