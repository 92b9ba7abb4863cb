package org.jvhost.host.it;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One external process started by a test: its merged stdout/stderr is copied to a log file (kept
 * under {@code host/target/it-logs/} for post-mortems) and into memory, where tests wait for
 * patterns with a deadline. Every wait is bounded; {@link #close()} always ends the process by its
 * PID (TERM, then KILL), so a failed assertion leaves nothing running.
 */
public final class ProcessUnderTest implements AutoCloseable {

    private static final Duration TERM_GRACE = Duration.ofSeconds(5);

    private final String name;
    private final Process process;
    private final Path log;
    private final StringBuilder output = new StringBuilder();
    private final OutputStream stdin;
    private final Thread pump;

    private ProcessUnderTest(String name, Process process, Path log) throws IOException {
        this.name = name;
        this.process = process;
        this.log = log;
        this.stdin = process.getOutputStream();
        OutputStream logOut = Files.newOutputStream(log);
        this.pump = new Thread(() -> pump(process.getInputStream(), logOut), "it-pump-" + name);
        pump.setDaemon(true);
        pump.start();
    }

    /** Starts {@code command}; output goes to {@code logDir/name.log}. */
    public static ProcessUnderTest start(String name, List<String> command, Path logDir) {
        try {
            Files.createDirectories(logDir);
            Path log = logDir.resolve(name + ".log");
            Files.writeString(log.resolveSibling(name + ".cmd"), String.join(" ", command) + "\n");
            Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
            return new ProcessUnderTest(name, p, log);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + name + ": " + command, e);
        }
    }

    private void pump(InputStream in, OutputStream logOut) {
        byte[] buf = new byte[8192];
        try (in; logOut) {
            int n;
            while ((n = in.read(buf)) > 0) {
                logOut.write(buf, 0, n);
                logOut.flush();
                synchronized (output) {
                    output.append(new String(buf, 0, n, StandardCharsets.UTF_8));
                    output.notifyAll();
                }
            }
        } catch (IOException e) {
            // The process went away; whatever it printed is already recorded.
        } finally {
            synchronized (output) {
                output.notifyAll();
            }
        }
    }

    public String name() {
        return name;
    }

    public long pid() {
        return process.pid();
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    public Path log() {
        return log;
    }

    /** Position in the output to search from: waits after {@code mark()} ignore older output. */
    public int mark() {
        synchronized (output) {
            return output.length();
        }
    }

    public String outputSince(int mark) {
        synchronized (output) {
            return output.substring(Math.min(mark, output.length()));
        }
    }

    /** Writes one line to the process' stdin (testpmd's interactive prompt). */
    public void send(String line) {
        try {
            stdin.write((line + "\n").getBytes(StandardCharsets.UTF_8));
            stdin.flush();
        } catch (IOException e) {
            throw new AssertionError(name + " no longer reads its stdin (exited?) while sending '" + line
                    + "'" + tail(), e);
        }
    }

    /**
     * Waits until {@code pattern} matches output printed after {@code mark}, at most {@code timeout}.
     * Fails with the output's tail if the deadline passes or the process exits first.
     */
    public Matcher await(Pattern pattern, int mark, Duration timeout) {
        return await(pattern, mark, timeout, null);
    }

    /**
     * As {@link #await(Pattern, int, Duration)}, but fails as soon as {@code peer} (the other end,
     * e.g. the back-end this front-end waits for) exits, with the peer's output: a crashed back-end
     * then reads as such instead of as a front-end timeout.
     */
    public Matcher await(Pattern pattern, int mark, Duration timeout, ProcessUnderTest peer) {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (output) {
            while (true) {
                Matcher m = pattern.matcher(output);
                if (m.find(Math.min(mark, output.length()))) {
                    return m;
                }
                if (peer != null && !peer.isAlive()) {
                    throw new AssertionError(peer.name() + " exited (status " + peer.exitStatus() + ") while " + name
                            + " waited for /" + pattern + "/" + peer.tail() + tail());
                }
                long left = deadline - System.nanoTime();
                boolean ended = !process.isAlive() && !pump.isAlive();
                if (left <= 0 || ended) {
                    throw new AssertionError(name + (ended ? " exited (status " + exitStatus() + ")" : " timed out after " + timeout)
                            + " before printing /" + pattern + "/" + tail());
                }
                try {
                    output.wait(Math.max(1, Math.min(TimeUnit.NANOSECONDS.toMillis(left), 200)));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new AssertionError("interrupted waiting for " + name, e);
                }
            }
        }
    }

    /** Waits for the process to exit by itself; returns its status, failing after {@code timeout}. */
    public int awaitExit(Duration timeout) {
        try {
            if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                throw new AssertionError(name + " still running after " + timeout + tail());
            }
            pump.join(2000);
            return process.exitValue();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted waiting for " + name + " to exit", e);
        }
    }

    /** SIGKILL, as a crash would: no chance to clean up sockets or say goodbye to the peer. */
    public void kill() {
        process.destroyForcibly();
        try {
            process.waitFor(TERM_GRACE.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Ends the process by its PID: SIGTERM, then SIGKILL after a grace period. Idempotent. */
    @Override
    public void close() {
        if (process.isAlive()) {
            process.destroy();
            try {
                if (!process.waitFor(TERM_GRACE.toMillis(), TimeUnit.MILLISECONDS)) {
                    process.destroyForcibly();
                    process.waitFor(TERM_GRACE.toMillis(), TimeUnit.MILLISECONDS);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                process.destroyForcibly();
            }
        }
        try {
            stdin.close();
        } catch (IOException e) {
            // Already closed by the exit.
        }
    }

    private String exitStatus() {
        return process.isAlive() ? "running" : String.valueOf(process.exitValue());
    }

    /** The last part of the output, for failure messages. */
    public String tail() {
        synchronized (output) {
            int from = Math.max(0, output.length() - 4000);
            return "\n--- last output of " + name + " (full log: " + log + ") ---\n" + output.substring(from)
                    + "\n--- end of " + name + " ---";
        }
    }
}
