package org.jvhost.host.metrics;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.net.UnknownHostException;
import java.nio.channels.ClosedSelectorException;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.ArrayDeque;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code GET /metrics} in the Prometheus text exposition format (version 0.0.4), or OpenMetrics text
 * when the scraper's {@code Accept} header asks for it, bound to a loopback
 * address only: the counters name every VM's sockets, and the endpoint has no authentication, so it is
 * for a local agent (or a reverse proxy that adds TLS and auth).
 *
 * <p>One thread, {@code jvhost-metrics}, serves every connection without blocking (a selector), so a
 * client that sends part of a request and waits delays nobody. (The JDK's {@code HttpServer} read the
 * request on its one dispatcher thread: one such client stalled every scrape.) Each connection has
 * {@value #DEADLINE_MS} ms from accept to finish its exchange, at most {@value #MAX_CONNECTIONS} are
 * open (the oldest is closed for a new one: a real scrape takes milliseconds), and a failing accept
 * (EMFILE when the process runs out of file descriptors) pauses accepting for {@value #ACCEPT_PAUSE_MS}
 * ms instead of ending the endpoint.
 */
public final class MetricsServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(MetricsServer.class);
    /** The Prometheus text format's content type, as the Prometheus client's writer gives it. */
    static final String CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
    /** A request head (request line and headers) longer than this is refused; a scraper sends a few hundred. */
    static final int MAX_REQUEST_BYTES = 8 * 1024;
    /** Open connections beyond this close the oldest: a bound on the fds clients can pin. */
    static final int MAX_CONNECTIONS = 16;
    /** From accept to the last byte of the response; Prometheus' own scrape timeout defaults to 10 s. */
    static final long DEADLINE_MS = 5_000;
    private static final long ACCEPT_PAUSE_MS = 1_000;
    private static final long JOIN_MS = 3_000;

    private final ServerSocketChannel server;
    private final InetSocketAddress address;
    private final Selector selector;
    private final SelectionKey acceptKey;
    private final Exposition body;
    private final long deadlineNanos;
    private final Thread thread;
    /** Open connections, oldest (so also the earliest deadline) first. */
    private final ArrayDeque<HttpConnection> connections = new ArrayDeque<>();
    /** {@link System#nanoTime()} when accepting resumes after a failure, or 0 when not paused. */
    private long acceptPausedUntil;
    private volatile boolean closed;

    private MetricsServer(ServerSocketChannel server, Exposition body, long deadlineMillis) throws IOException {
        this.server = server;
        this.address = (InetSocketAddress) server.getLocalAddress();
        this.body = body;
        this.deadlineNanos = TimeUnit.MILLISECONDS.toNanos(deadlineMillis);
        this.selector = Selector.open();
        this.acceptKey = server.register(selector, SelectionKey.OP_ACCEPT);
        this.thread = new Thread(this::loop, "jvhost-metrics");
        this.thread.setDaemon(true);
    }

    /**
     * Parses {@code HOST:PORT} ({@code [ADDR]:PORT} for IPv6) and checks that HOST is a loopback address.
     *
     * @throws IllegalArgumentException saying what is wrong, e.g. that a non-loopback address is refused
     */
    public static InetSocketAddress loopbackAddress(String listen) {
        int colon = listen.lastIndexOf(':');
        if (colon <= 0 || colon == listen.length() - 1) {
            throw new IllegalArgumentException("metrics address '" + listen + "': expected HOST:PORT, e.g. 127.0.0.1:9109");
        }
        String host = listen.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        int port;
        try {
            port = Integer.parseInt(listen.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("metrics address '" + listen + "': port is not a number");
        }
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("metrics address '" + listen + "': port " + port + " is not in 0..65535");
        }
        InetAddress[] addresses;
        try {
            addresses = InetAddress.getAllByName(host);
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("metrics address '" + listen + "': unknown host " + host);
        }
        for (InetAddress a : addresses) {
            if (!a.isLoopbackAddress()) {
                throw new IllegalArgumentException("metrics address '" + listen + "': " + a.getHostAddress()
                        + " is not a loopback address; the metrics endpoint has no authentication and listens "
                        + "on loopback only (127.0.0.1 or ::1)");
            }
        }
        return new InetSocketAddress(addresses[0], port);
    }

    /**
     * Serves {@code body} at {@code /metrics} on {@code address}.
     *
     * @throws IllegalArgumentException if {@code address} is not a loopback address
     * @throws IOException              naming the address if it cannot listen there
     */
    public static MetricsServer start(InetSocketAddress address, Exposition body) throws IOException {
        return start(address, body, DEADLINE_MS);
    }

    /** {@link #start(InetSocketAddress, Supplier)} with another deadline per connection (tests). */
    static MetricsServer start(InetSocketAddress address, Exposition body, long deadlineMillis)
            throws IOException {
        if (!address.getAddress().isLoopbackAddress()) {
            throw new IllegalArgumentException(address + " is not a loopback address");
        }
        ServerSocketChannel ch = ServerSocketChannel.open();
        MetricsServer s;
        try {
            ch.setOption(StandardSocketOptions.SO_REUSEADDR, true);
            ch.bind(address, MAX_CONNECTIONS);
            ch.configureBlocking(false);
            s = new MetricsServer(ch, body, deadlineMillis);
        } catch (IOException e) {
            ch.close();
            throw new IOException("metrics endpoint " + address + ": cannot listen: " + e.getMessage(), e);
        }
        s.thread.start();
        LOG.info("metrics at http://{}/metrics", s.describe());
        return s;
    }

    private void loop() {
        try {
            while (!closed) {
                selector.select(this::handle, selectTimeoutMillis());
                resumeAccepting();
                closeExpired();
            }
        } catch (IOException | ClosedSelectorException e) {
            if (!closed) {
                LOG.error("metrics endpoint {}: the selector failed, metrics are no longer served: {}",
                        describe(), e.getMessage());
            }
        }
    }

    /** Until the earliest deadline or the end of an accept pause; 0 (no limit) when neither is pending. */
    private long selectTimeoutMillis() {
        long now = System.nanoTime();
        long until = Long.MAX_VALUE;
        if (!connections.isEmpty()) {
            until = connections.peekFirst().deadline;
        }
        if (acceptPausedUntil != 0) {
            until = Math.min(until, acceptPausedUntil);
        }
        return until == Long.MAX_VALUE ? 0 : Math.max(1, TimeUnit.NANOSECONDS.toMillis(until - now) + 1);
    }

    private void handle(SelectionKey key) {
        if (!key.isValid()) {
            return;
        }
        if (key == acceptKey) {
            accept();
        } else {
            serve(key);
        }
    }

    private void accept() {
        SocketChannel ch;
        try {
            ch = server.accept();
        } catch (IOException e) {
            // EMFILE/ENFILE: the connection stays in the backlog and would wake the selector at once again
            LOG.warn("metrics endpoint {}: cannot accept a connection ({}); trying again in {} ms",
                    describe(), e.getMessage(), ACCEPT_PAUSE_MS);
            acceptKey.interestOps(0);
            acceptPausedUntil = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ACCEPT_PAUSE_MS);
            return;
        }
        if (ch == null) {
            return;
        }
        if (connections.size() >= MAX_CONNECTIONS) {
            close(connections.peekFirst());
        }
        try {
            ch.configureBlocking(false);
            HttpConnection c = new HttpConnection(ch, System.nanoTime() + deadlineNanos);
            ch.register(selector, SelectionKey.OP_READ, c);
            connections.addLast(c);
        } catch (IOException e) {
            closeQuietly(ch);
        }
    }

    private void resumeAccepting() {
        if (acceptPausedUntil != 0 && System.nanoTime() - acceptPausedUntil >= 0) {
            acceptPausedUntil = 0;
            acceptKey.interestOps(SelectionKey.OP_ACCEPT);
        }
    }

    private void serve(SelectionKey key) {
        HttpConnection c = (HttpConnection) key.attachment();
        try {
            if (!c.answered()) {
                if (!c.read(body)) {
                    close(c);
                    return;
                }
                if (!c.answered()) {
                    return;
                }
            }
            if (c.write()) {
                close(c);
            } else {
                key.interestOps(SelectionKey.OP_WRITE); // the socket buffer is full: wait until it drains
            }
        } catch (IOException e) {
            LOG.debug("metrics client dropped: {}", e.getMessage());
            close(c);
        }
    }

    private void closeExpired() {
        long now = System.nanoTime();
        while (!connections.isEmpty() && now - connections.peekFirst().deadline >= 0) {
            HttpConnection c = connections.peekFirst();
            LOG.debug("metrics client closed: no complete exchange within {} ms", TimeUnit.NANOSECONDS.toMillis(deadlineNanos));
            c.timeOut();
            close(c);
        }
    }

    private void close(HttpConnection c) {
        connections.remove(c);
        closeQuietly(c.channel); // also cancels its key
    }

    private static void closeQuietly(SocketChannel ch) {
        try {
            ch.close();
        } catch (IOException ignored) {
            // nothing left to release
        }
    }

    /** The bound address, {@code HOST:PORT} (the real port when 0 was asked for). */
    public InetSocketAddress address() {
        return address;
    }

    private String describe() {
        InetSocketAddress a = address();
        String host = a.getAddress().getHostAddress();
        return (host.contains(":") ? "[" + host + "]" : host) + ":" + a.getPort();
    }

    /** Stops serving: closes every connection and the listening socket. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        selector.wakeup();
        try {
            thread.join(JOIN_MS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        connections.forEach(c -> closeQuietly(c.channel));
        connections.clear();
        try {
            selector.close();
            server.close();
        } catch (IOException e) {
            LOG.warn("metrics endpoint: {}", e.getMessage());
        }
    }
}
