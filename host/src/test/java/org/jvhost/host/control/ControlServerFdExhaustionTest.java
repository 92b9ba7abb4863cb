package org.jvhost.host.control;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.jvhost.testkit.FullFdTable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.FileDescriptorCast;

/**
 * A control client that connects while the process is at RLIMIT_NOFILE makes {@code accept} fail with
 * EMFILE. The control socket must pause accepting, not stop serving: once fds are free the waiting
 * client is answered, and later ones too.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ControlServerFdExhaustionTest {

    @TempDir
    Path dir;

    @Test
    void aClientArrivingAtTheFdLimitIsAnsweredOnceFdsAreFree() throws Exception {
        Path path = dir.resolve("ctl.sock");
        try (ControlServer server = ControlServer.start(path, line -> Json.write(Map.of("echo", line)))) {
            assertEquals("{\"echo\":\"warm-up\"}", ControlClient.request(path, "warm-up"));
            int early = FullFdTable.unconnectedSocket();
            try (AFUNIXSocket s = FileDescriptorCast.unsafeUsing(early).as(AFUNIXSocket.class)) {
                try (FullFdTable full = FullFdTable.fill()) {
                    FullFdTable.connect(early, path); // waits in the backlog: accept gets EMFILE
                    Thread.sleep(300);
                }
                s.setSoTimeout(3000);
                s.getOutputStream().write("ping\n".getBytes(StandardCharsets.UTF_8));
                BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
                try {
                    assertEquals("{\"echo\":\"ping\"}", in.readLine());
                } catch (SocketTimeoutException e) {
                    throw new AssertionError("no answer within 3 s to a client that connected while the process "
                            + "was out of fds: the control socket stopped serving", e);
                }
            }
            assertEquals("{\"echo\":\"x\"}", ControlClient.request(path, "x"), "a later client is answered");
        }
    }
}
