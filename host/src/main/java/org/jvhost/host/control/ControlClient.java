package org.jvhost.host.control;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;

/** Sends one request line to a control socket and reads the one response line. */
public final class ControlClient {
    /** Long enough for a reload that restarts many devices (each stop may take a few seconds). */
    static final int TIMEOUT_MS = 120_000;

    private ControlClient() {
    }

    /**
     * @return the response line (a JSON object)
     * @throws IOException naming the socket if it cannot connect, or if the server closed without answering
     */
    public static String request(Path socket, String line) throws IOException {
        try (AFUNIXSocket s = AFUNIXSocket.connectTo(AFUNIXSocketAddress.of(socket))) {
            s.setSoTimeout(TIMEOUT_MS);
            OutputStream out = s.getOutputStream();
            out.write((line + "\n").getBytes(StandardCharsets.UTF_8));
            out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
            String response = in.readLine();
            if (response == null) {
                throw new IOException(socket + ": the control socket closed without answering");
            }
            return response;
        } catch (java.net.SocketTimeoutException e) {
            throw new IOException(socket + ": no answer within " + TIMEOUT_MS / 1000 + " s", e);
        }
    }
}
