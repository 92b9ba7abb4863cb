package org.jvhost.host.it;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A QEMU Machine Protocol client over the Unix socket of {@code -qmp unix:PATH,server=on,wait=off}: one
 * JSON command per line, each answered by a line with {@code "return"} or {@code "error"}; event lines
 * in between are skipped. Just enough JSON for the migration tests (commands are written by hand,
 * answers read with patterns).
 */
final class Qmp implements AutoCloseable {
    private static final Pattern STATUS = Pattern.compile("\"status\":\\s*\"([a-z-]+)\"");
    private static final Pattern DOWNTIME = Pattern.compile("\"downtime\":\\s*(\\d+)");

    private final SocketChannel channel;
    private final BufferedReader in;

    private Qmp(SocketChannel channel) throws IOException {
        this.channel = channel;
        this.in = new BufferedReader(new InputStreamReader(Channels.newInputStream(channel), StandardCharsets.UTF_8));
        in.readLine(); // the greeting
        execute("{\"execute\":\"qmp_capabilities\"}");
    }

    /** Connects once QEMU has created {@code socket} (at most {@code timeout}). */
    static Qmp connect(Path socket, Duration timeout, ProcessUnderTest qemu) {
        long deadline = System.nanoTime() + timeout.toNanos();
        Peers.awaitNewFile(socket, null, timeout, qemu);
        // QEMU binds the socket (the file appears) a moment before it listens: refused until then
        for (int attempt = 1; ; attempt++) {
            try {
                SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
                try {
                    ch.connect(UnixDomainSocketAddress.of(socket));
                } catch (IOException e) {
                    ch.close();
                    throw e;
                }
                return new Qmp(ch);
            } catch (java.net.ConnectException e) {
                if (System.nanoTime() - deadline > 0) {
                    throw new UncheckedIOException("QMP at " + socket + ": refused for " + attempt + " attempts", e);
                }
                Peers.sleep(Duration.ofMillis(20));
            } catch (IOException e) {
                throw new UncheckedIOException("QMP at " + socket, e);
            }
        }
    }

    /** Sends one command line; returns its answer line, failing on an error answer. */
    String execute(String json) {
        try {
            channel.write(StandardCharsets.UTF_8.encode(json + "\n"));
            for (String line; (line = in.readLine()) != null; ) {
                if (line.contains("\"return\"")) {
                    return line;
                }
                if (line.contains("\"error\"")) {
                    throw new AssertionError("QMP " + json + " failed: " + line);
                }
            }
            throw new AssertionError("QMP closed while waiting for the answer to " + json);
        } catch (IOException e) {
            throw new UncheckedIOException("QMP " + json, e);
        }
    }

    /** {@code query-migrate}'s answer. */
    String queryMigrate() {
        return execute("{\"execute\":\"query-migrate\"}");
    }

    /** The migration status in a {@code query-migrate} answer ("active", "completed", "cancelled"...), or "none". */
    static String status(String answer) {
        Matcher m = STATUS.matcher(answer);
        return m.find() ? m.group(1) : "none";
    }

    /** The downtime QEMU reports in a completed migration's {@code query-migrate} answer, in ms (-1 if absent). */
    static long downtimeMs(String answer) {
        Matcher m = DOWNTIME.matcher(answer);
        return m.find() ? Long.parseLong(m.group(1)) : -1;
    }

    /** Polls {@code query-migrate} until its status is one of {@code wanted}; returns that answer. */
    String awaitMigration(Duration timeout, String... wanted) {
        long deadline = System.nanoTime() + timeout.toNanos();
        String answer = "";
        while (System.nanoTime() < deadline) {
            answer = queryMigrate();
            String status = status(answer);
            for (String w : wanted) {
                if (w.equals(status)) {
                    return answer;
                }
            }
            if (status.equals("failed")) {
                throw new AssertionError("migration failed: " + answer);
            }
            Peers.sleep(Duration.ofMillis(200));
        }
        throw new AssertionError("migration not " + String.join("/", wanted) + " after " + timeout + ": " + answer);
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
