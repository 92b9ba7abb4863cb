package org.jvhost.host.metrics;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code GET /metrics} in the Prometheus text exposition format (version 0.0.4), on the JDK's HTTP
 * server, bound to a loopback address only: the counters name every VM's sockets, and the endpoint has
 * no authentication, so it is for a local agent (or a reverse proxy that adds TLS and auth). Requests
 * are served on the server's one dispatcher thread.
 */
public final class MetricsServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(MetricsServer.class);
    static final String CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

    private final HttpServer server;

    private MetricsServer(HttpServer server) {
        this.server = server;
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
     * Serves {@code body} (the whole exposition text) at {@code /metrics} on {@code address}.
     *
     * @throws IllegalArgumentException if {@code address} is not a loopback address
     * @throws IOException              naming the address if it cannot listen there
     */
    public static MetricsServer start(InetSocketAddress address, Supplier<String> body) throws IOException {
        if (!address.getAddress().isLoopbackAddress()) {
            throw new IllegalArgumentException(address + " is not a loopback address");
        }
        HttpServer http;
        try {
            http = HttpServer.create(address, 16);
        } catch (IOException e) {
            throw new IOException("metrics endpoint " + address + ": cannot listen: " + e.getMessage(), e);
        }
        http.createContext("/metrics", exchange -> serve(exchange, body));
        http.start();
        MetricsServer s = new MetricsServer(http);
        LOG.info("metrics at http://{}/metrics", s.describe());
        return s;
    }

    private static void serve(HttpExchange exchange, Supplier<String> body) throws IOException {
        try (exchange) {
            String method = exchange.getRequestMethod();
            if (!exchange.getRequestURI().getPath().equals("/metrics")) {
                exchange.sendResponseHeaders(404, -1);
                return;
            }
            if (!method.equals("GET") && !method.equals("HEAD")) {
                exchange.getResponseHeaders().set("Allow", "GET, HEAD");
                exchange.sendResponseHeaders(405, -1);
                return;
            }
            byte[] bytes;
            try {
                bytes = body.get().getBytes(StandardCharsets.UTF_8);
            } catch (RuntimeException e) {
                LOG.error("metrics: rendering failed", e);
                exchange.sendResponseHeaders(500, -1);
                return;
            }
            exchange.getResponseHeaders().set("Content-Type", CONTENT_TYPE);
            if (method.equals("HEAD")) {
                exchange.sendResponseHeaders(200, -1);
                return;
            }
            exchange.sendResponseHeaders(200, bytes.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(bytes);
            }
        }
    }

    /** The bound address, {@code HOST:PORT} (the real port when 0 was asked for). */
    public InetSocketAddress address() {
        return server.getAddress();
    }

    private String describe() {
        InetSocketAddress a = address();
        String host = a.getAddress().getHostAddress();
        return (host.contains(":") ? "[" + host + "]" : host) + ":" + a.getPort();
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
