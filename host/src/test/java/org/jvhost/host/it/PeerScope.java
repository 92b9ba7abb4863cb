package org.jvhost.host.it;

import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * What one integration test starts, and where its files go. Registered as a field with
 * {@code @RegisterExtension}, it gives each test a short socket directory ({@link Peers#socketDir()})
 * and its log directory ({@link Peers#logDir}); after the test it closes everything the test
 * {@link #track tracked}, in reverse order of start (a back-end outlives the front-ends started on it,
 * a namespace or huge-page mount outlives the processes in it), every one even when one throws, and
 * then deletes the socket directory. The first failure is rethrown with the others suppressed.
 */
public final class PeerScope implements BeforeEachCallback, AfterEachCallback {

    private final Deque<AutoCloseable> started = new ArrayDeque<>();
    private Path sockets;
    private Path logs;

    @Override
    public void beforeEach(ExtensionContext context) {
        sockets = Peers.socketDir();
        logs = Peers.logDir(context.getRequiredTestClass(), context.getRequiredTestMethod().getName(),
                context.getDisplayName());
    }

    @Override
    public void afterEach(ExtensionContext context) throws Exception {
        Throwable failure = null;
        while (!started.isEmpty()) {
            try {
                started.pop().close();
            } catch (Exception | AssertionError e) {
                if (failure == null) {
                    failure = e;
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        Peers.deleteTree(sockets);
        if (failure instanceof Exception e) {
            throw e;
        }
        if (failure != null) {
            throw (AssertionError) failure;
        }
    }

    /** Closes {@code resource} after the test, before everything tracked earlier; returns it. */
    public <T extends AutoCloseable> T track(T resource) {
        started.push(resource);
        return resource;
    }

    /** This test's private socket directory; deleted after the test. */
    public Path sockets() {
        return sockets;
    }

    /** This test's log directory: {@code host/target/it-logs/Class.method[params]/}. */
    public Path logs() {
        return logs;
    }
}
