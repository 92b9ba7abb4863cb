package org.jvhost.host.cli;

/**
 * A {@link Lifecycle} for tests: serving "ends" at once, and what {@code serve} arranged with the
 * process is recorded: whether a shutdown hook is still installed (in the real process it would turn
 * any exit into status 0) and the SIGHUP handler.
 */
class RecordingLifecycle implements Lifecycle {
    /** A shutdown hook was installed and not cancelled. */
    boolean hookInstalled;
    /** The SIGHUP handler, or null if none was installed (the JVM's default stops the process). */
    Runnable hangup;
    boolean awaited;

    @Override
    public void closeOnShutdown(Runnable close) {
        hookInstalled = true;
    }

    @Override
    public void cancel() {
        hookInstalled = false;
    }

    @Override
    public void awaitShutdown() {
        awaited = true;
    }

    @Override
    public void reloadOnHangup(Runnable reload) {
        hangup = reload;
    }
}
