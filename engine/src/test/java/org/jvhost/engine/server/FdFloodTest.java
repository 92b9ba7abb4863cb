package org.jvhost.engine.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.jvhost.engine.protocol.FrontendRequest;
import org.jvhost.engine.protocol.MessageHeader;
import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.testkit.ScriptedFrontend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Messages that carry more fds than any vhost-user request may (the spec's maximum is 8), up to the
 * kernel's 253 per message. Each must be refused with its connection closed and every fd the kernel
 * installed for it closed again: a back-end that keeps some leaks them per message until the process
 * reaches RLIMIT_NOFILE and can accept no front-end at all.
 */
@Timeout(120)
class FdFloodTest {
    private static final int MESSAGES = 400;
    private static final int CHECK_EVERY = 50;
    /** The kernel's SCM_MAX_FD: the most fds one sendmsg can carry. */
    private static final int SCM_MAX_FD = 253;
    private static final String MEMFD_NAME = "jvhost-fd-flood";

    @TempDir
    Path dir;
    Host host;
    LiveRing target;
    LiveRing bystander;
    int memfd = -1;

    @BeforeEach
    void start() throws Exception {
        host = new Host(1);
        Path socket = dir.resolve("bystander.sock");
        bystander = new LiveRing(host, "bystander", socket).connect(socket, true);
        target = new LiveRing(host, "target", dir.resolve("target.sock"));
        memfd = LinuxSys.memfdCreate(MEMFD_NAME, LinuxSys.MFD_CLOEXEC);
    }

    @AfterEach
    void stop() throws Exception {
        LinuxSys.closeQuietly(memfd);
        target.close();
        bystander.close();
        host.close();
    }

    @Test
    void everyFdOfAMessageWithTooManyIsClosedAndTheHostGoesOn() throws Exception {
        Path socket = dir.resolve("target.sock");
        int totalBefore = ProtocolLifecycleTest.openFds();
        Random random = new Random(11);
        for (int i = 1; i <= MESSAGES; i++) {
            // alternately past junixsocket's 60-fd buffer, and anywhere past the spec's 8
            int count = i % 2 == 0 ? 61 + random.nextInt(SCM_MAX_FD - 60) : 9 + random.nextInt(SCM_MAX_FD - 8);
            sendAndExpectClose(socket, count, i);
            if (i % CHECK_EVERY == 0) {
                assertEquals(1, awaitMemfdCopies(1), "copies of the memfd still open after " + i
                        + " messages with 9.." + SCM_MAX_FD + " fds each (1 is the test's own)");
            }
        }
        int totalAfter = ProtocolLifecycleTest.awaitFdsAtMost(totalBefore);
        assertTrue(totalAfter <= totalBefore, "open fds of the process grew from " + totalBefore + " to "
                + totalAfter + " after " + MESSAGES + " messages");
        bystander.kickAndAssertServed(bystander.ping());
        target.connect(socket, true).kickAndAssertServed(target.ping());
    }

    @Test
    void fdsAddUpOverTheSendsOfOneMessage() throws Exception {
        Path socket = dir.resolve("target.sock");
        int[] five = new int[5];
        Arrays.fill(five, memfd);
        ByteBuffer header = ByteBuffer.allocate(MessageHeader.SIZE).order(MessageHeader.ORDER);
        new MessageHeader(FrontendRequest.GET_FEATURES.code(), MessageHeader.VERSION, 0).encode(header);
        try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
            // two halves of one header, 5 fds each: 10 for the message, over the 8 allowed
            fe.sendRaw(Arrays.copyOfRange(header.array(), 0, 6), five);
            Thread.sleep(50);
            fe.sendRaw(Arrays.copyOfRange(header.array(), 6, MessageHeader.SIZE), five);
            assertTrue(fe.isClosedByPeer(3000), "a message whose sends carried 10 fds in all was accepted");
        }
        assertEquals(1, awaitMemfdCopies(1), "copies of the memfd still open (1 is the test's own)");
        target.connect(socket, true).kickAndAssertServed(target.ping());
    }

    /** One GET_FEATURES carrying {@code count} copies of the memfd; the host must close the connection. */
    private void sendAndExpectClose(Path socket, int count, int index) throws IOException {
        int[] fds = new int[count];
        Arrays.fill(fds, memfd);
        try (ScriptedFrontend fe = ScriptedFrontend.connect(socket)) {
            fe.send(FrontendRequest.GET_FEATURES.code(), MessageHeader.VERSION, null, fds);
            assertTrue(fe.isClosedByPeer(3000), "message " + index + " with " + count
                    + " fds: the host kept the connection open");
        }
    }

    /** Waits up to 5 s for the number of open fds naming the test's memfd to drop to {@code expected}. */
    private static int awaitMemfdCopies(int expected) throws Exception {
        long deadline = System.nanoTime() + 5_000_000_000L;
        int n = memfdCopies();
        while (n != expected && System.nanoTime() < deadline) {
            Thread.sleep(20);
            n = memfdCopies();
        }
        return n;
    }

    private static int memfdCopies() throws IOException {
        int n = 0;
        try (DirectoryStream<Path> fds = Files.newDirectoryStream(Path.of("/proc/self/fd"))) {
            for (Path fd : fds) {
                try {
                    if (Files.readSymbolicLink(fd).toString().contains("memfd:" + MEMFD_NAME)) {
                        n++;
                    }
                } catch (IOException closedMeanwhile) {
                    // gone between listing and reading
                }
            }
        }
        return n;
    }
}
