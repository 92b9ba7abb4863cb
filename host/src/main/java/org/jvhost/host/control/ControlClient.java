package org.jvhost.host.control;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * Sends one request line to a control socket and reads the one response line. It uses the JDK's own
 * Unix-domain channels rather than junixsocket: a client needs no fd passing, and loading junixsocket's
 * native library was a large part of {@code jvhost ctl}'s start-up time.
 */
public final class ControlClient {
    /** Long enough for a reload that restarts many devices (each stop may take a few seconds). */
    static final int TIMEOUT_MS = 120_000;

    private ControlClient() {
    }

    /**
     * @return the response line (a JSON object)
     * @throws IOException naming the socket if it cannot connect, or if the server closed without
     *                     answering or did not answer within {@value #TIMEOUT_MS} ms
     */
    public static String request(Path socket, String line) throws IOException {
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            try {
                ch.connect(UnixDomainSocketAddress.of(socket));
            } catch (IOException e) {
                throw new IOException(socket + ": cannot connect: " + reason(e), e);
            }
            ByteBuffer out = ByteBuffer.wrap((line + "\n").getBytes(StandardCharsets.UTF_8));
            while (out.hasRemaining()) {
                ch.write(out);
            }
            return readLine(ch, socket);
        }
    }

    /** Reads up to the first line feed, waiting at most {@value #TIMEOUT_MS} ms in all. */
    private static String readLine(SocketChannel ch, Path socket) throws IOException {
        ch.configureBlocking(false);
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(TIMEOUT_MS);
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        ByteBuffer in = ByteBuffer.allocate(64 * 1024);
        try (Selector selector = Selector.open()) {
            ch.register(selector, SelectionKey.OP_READ);
            while (true) {
                long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
                if (left <= 0) {
                    throw new IOException(socket + ": no answer within " + TIMEOUT_MS / 1000 + " s");
                }
                selector.select(left);
                selector.selectedKeys().clear();
                in.clear();
                int n = ch.read(in);
                if (n < 0) {
                    throw new IOException(socket + ": the control socket closed without answering");
                }
                for (int i = 0; i < n; i++) {
                    if (in.get(i) == '\n') {
                        line.write(in.array(), 0, i);
                        return line.toString(StandardCharsets.UTF_8);
                    }
                }
                line.write(in.array(), 0, n);
            }
        }
    }

    /** The JDK says "No such file or directory" or "Connection refused"; a class name helps nobody. */
    private static String reason(IOException e) {
        String m = e.getMessage();
        if (e instanceof java.net.SocketException && m != null) {
            return m.contains("No such file") ? "no such socket (is jvhost serve running with this --control?)"
                    : m.contains("refused") ? "nobody listens on it (a socket left by a stopped jvhost?)" : m;
        }
        return m != null ? m : "I/O error";
    }
}
