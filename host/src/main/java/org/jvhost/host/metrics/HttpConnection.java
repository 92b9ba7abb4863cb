package org.jvhost.host.metrics;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One connection to the metrics endpoint, served without blocking: collect the request head (request
 * line and headers, up to the empty line), answer it with one HTTP/1.1 response, close. There is no
 * keep-alive ({@code Connection: close}) and no request body, which is all a scraper needs. The
 * connection has a deadline; {@link MetricsServer} closes it when the deadline passes.
 */
final class HttpConnection {
    private static final Logger LOG = LoggerFactory.getLogger(HttpConnection.class);

    final SocketChannel channel;
    /** {@link System#nanoTime()} by which the exchange must be done. */
    final long deadline;
    private final ByteBuffer in = ByteBuffer.allocate(MetricsServer.MAX_REQUEST_BYTES);
    /** The response not yet written, or null while the request is incomplete. */
    private ByteBuffer out;

    HttpConnection(SocketChannel channel, long deadline) {
        this.channel = channel;
        this.deadline = deadline;
    }

    /**
     * Reads what has arrived; once the request head is complete (or too long) prepares the response.
     *
     * @return false if the client closed before finishing its request
     */
    boolean read(Exposition body) throws IOException {
        if (channel.read(in) < 0) {
            return false;
        }
        int end = headEnd();
        if (end >= 0) {
            out = answer(new String(in.array(), 0, end, StandardCharsets.ISO_8859_1), body);
        } else if (!in.hasRemaining()) {
            out = status(431, "Request Header Fields Too Large", "");
        }
        return true;
    }

    /** Whether the response is ready (to be written). */
    boolean answered() {
        return out != null;
    }

    /**
     * Writes as much of the response as the socket takes.
     *
     * @return true once all of it is written
     */
    boolean write() throws IOException {
        channel.write(out);
        return !out.hasRemaining();
    }

    /**
     * At the deadline: a client that sent part of a request is told so (one write attempt, best effort),
     * one that sent nothing is just closed.
     */
    void timeOut() {
        if (out == null && in.position() > 0) {
            try {
                channel.write(status(408, "Request Timeout", ""));
            } catch (IOException ignored) {
                // the connection closes anyway
            }
        }
    }

    /** The length of the request line and headers (without the empty line), or -1 if incomplete. */
    private int headEnd() {
        byte[] b = in.array();
        for (int i = 1; i < in.position(); i++) {
            if (b[i] == '\n' && (b[i - 1] == '\n' || (i >= 2 && b[i - 1] == '\r' && b[i - 2] == '\n'))) {
                return i + 1;
            }
        }
        return -1;
    }

    /**
     * The response to a complete request head: only {@code GET} and {@code HEAD} of {@code /metrics}, in
     * the format its {@code Accept} header asks for.
     */
    static ByteBuffer answer(String head, Exposition body) {
        String[] lines = head.split("\r?\n");
        String[] requestLine = lines[0].strip().split(" ");
        if (requestLine.length != 3 || !requestLine[2].startsWith("HTTP/")) {
            return status(400, "Bad Request", "");
        }
        String method = requestLine[0];
        String path = requestLine[1].split("\\?", 2)[0];
        if (!path.equals("/metrics")) {
            return status(404, "Not Found", "");
        }
        if (!method.equals("GET") && !method.equals("HEAD")) {
            return status(405, "Method Not Allowed", "Allow: GET, HEAD\r\n");
        }
        Exposition.Body text;
        try {
            text = body.render(header(lines, "accept"));
        } catch (IOException | RuntimeException | Error e) {
            // a device's counters() may throw anything; the endpoint must outlive it
            LOG.error("metrics: rendering failed", e);
            return status(500, "Internal Server Error", "");
        }
        byte[] headers = ("HTTP/1.1 200 OK\r\nContent-Type: " + text.contentType() + "\r\nContent-Length: "
                + text.bytes().length + "\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1);
        ByteBuffer response = ByteBuffer.allocate(headers.length + (method.equals("HEAD") ? 0 : text.bytes().length));
        response.put(headers);
        if (!method.equals("HEAD")) {
            response.put(text.bytes());
        }
        return response.flip();
    }

    /** The value of header {@code name} (lower case), or null if the head has none. */
    private static String header(String[] lines, String name) {
        for (int i = 1; i < lines.length; i++) {
            int colon = lines[i].indexOf(':');
            if (colon > 0 && lines[i].substring(0, colon).strip().toLowerCase(Locale.ROOT).equals(name)) {
                return lines[i].substring(colon + 1).strip();
            }
        }
        return null;
    }

    private static ByteBuffer status(int code, String reason, String extraHeaders) {
        return ByteBuffer.wrap(("HTTP/1.1 " + code + " " + reason + "\r\n" + extraHeaders
                + "Content-Length: 0\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
    }
}
