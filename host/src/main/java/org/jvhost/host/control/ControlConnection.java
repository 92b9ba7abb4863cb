package org.jvhost.host.control;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Map;
import java.util.function.UnaryOperator;
import org.newsclub.net.unix.AFUNIXSocketChannel;

/**
 * One control client, served without blocking: request lines in, one response line each out, in
 * order. Limits keep one client from taking the server down: a request line longer than
 * {@value #MAX_REQUEST_BYTES} bytes is refused, and a client with more than
 * {@value #MAX_PENDING_RESPONSE_BYTES} bytes of unread responses (one that sends requests and never
 * reads) is given up.
 */
final class ControlConnection {
    /** A request longer than this is refused (the longest real one is an {@code add} of a device spec). */
    static final int MAX_REQUEST_BYTES = 64 * 1024;
    /**
     * Unread responses a client may have queued before it is dropped (a single response of any size is
     * always queued): far above any real answer, and a bound on the heap one client can take.
     */
    static final int MAX_PENDING_RESPONSE_BYTES = 1024 * 1024;

    final AFUNIXSocketChannel channel;
    /** Closed and no longer counted (a key may be reported again after it was cancelled). */
    boolean dropped;
    private ByteBuffer in = ByteBuffer.allocate(1024);
    private final ArrayDeque<ByteBuffer> out = new ArrayDeque<>();
    /** The bytes of {@link #out}; a response is counted until it is written whole. */
    private int pendingBytes;
    /** The client finished sending: close once the responses are out. */
    private boolean ending;
    /**
     * The client sent too much: its input is read and dropped until it closes, since closing with
     * unread input would reset the connection before it reads the refusal; our side is shut down
     * once the refusal is out.
     */
    private boolean refused;
    private boolean outputShut;
    /** The client has {@link #MAX_PENDING_RESPONSE_BYTES} of unread responses: drop it. */
    private boolean overflowed;

    ControlConnection(AFUNIXSocketChannel channel) {
        this.channel = channel;
    }

    /**
     * Reads what arrived (if {@code readable}), answers each complete line with {@code answer}, and
     * writes what the socket takes.
     *
     * @return the interest ops to wait for next, or -1 when the connection is done: the client hung up
     *         and has its answers, or it is {@linkplain #overflowed() overflowed}
     */
    int serve(boolean readable, UnaryOperator<String> answer) throws IOException {
        if (readable) {
            read(answer);
        }
        if (overflowed) {
            return -1;
        }
        write();
        if (refused && out.isEmpty() && !outputShut) {
            channel.shutdownOutput();
            outputShut = true;
        }
        if (ending && out.isEmpty()) {
            return -1;
        }
        return (ending ? 0 : SelectionKey.OP_READ) | (out.isEmpty() ? 0 : SelectionKey.OP_WRITE);
    }

    /** Whether the client was given up for not reading its answers. */
    boolean overflowed() {
        return overflowed;
    }

    /** The bytes of responses queued and not yet written. */
    int pendingBytes() {
        return pendingBytes;
    }

    private void read(UnaryOperator<String> answer) throws IOException {
        if (refused) {
            in.clear();
            if (channel.read(in) < 0) {
                ending = true;
            }
            return;
        }
        if (!in.hasRemaining()) {
            grow();
        }
        if (channel.read(in) < 0) {
            ending = true; // answer what came complete, then close
        }
        answerCompleteLines(answer);
        if (!ending && !in.hasRemaining() && in.capacity() >= MAX_REQUEST_BYTES) {
            respond(Json.write(Map.of("ok", false, "error",
                    "request longer than " + MAX_REQUEST_BYTES + " bytes without a newline")));
            refused = true;
        }
    }

    private void grow() {
        int capacity = Math.min(MAX_REQUEST_BYTES, in.capacity() * 2);
        if (capacity > in.capacity()) {
            ByteBuffer bigger = ByteBuffer.allocate(capacity);
            in.flip();
            bigger.put(in);
            in = bigger;
        }
    }

    private void answerCompleteLines(UnaryOperator<String> answer) {
        in.flip();
        int start = 0;
        for (int i = 0; i < in.limit(); i++) {
            if (in.get(i) == '\n') {
                String line = new String(in.array(), start, i - start, StandardCharsets.UTF_8).strip();
                start = i + 1;
                if (!line.isEmpty() && !respond(answer.apply(line))) {
                    break;
                }
            }
        }
        in.position(start);
        in.compact();
    }

    /**
     * Queues a response.
     *
     * @return false, queuing nothing and marking the client {@linkplain #overflowed() overflowed}, if it
     *         has too many unread responses already
     */
    private boolean respond(String json) {
        ByteBuffer b = ByteBuffer.wrap((json + "\n").getBytes(StandardCharsets.UTF_8));
        if (!out.isEmpty() && pendingBytes + b.remaining() > MAX_PENDING_RESPONSE_BYTES) {
            overflowed = true;
            return false;
        }
        out.add(b);
        pendingBytes += b.remaining();
        return true;
    }

    private void write() throws IOException {
        while (!out.isEmpty()) {
            ByteBuffer b = out.peek();
            channel.write(b);
            if (b.hasRemaining()) {
                return; // the socket buffer is full: OP_WRITE brings us back
            }
            pendingBytes -= out.poll().limit();
        }
    }
}
