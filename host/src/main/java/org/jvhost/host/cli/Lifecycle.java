package org.jvhost.host.cli;

import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.host.systemd.ServiceNotifier;
import org.jvhost.host.systemd.Watchdog;

/**
 * How {@code serve} ends (on SIGTERM/SIGINT in the real process, at once in tests), and what the
 * service manager hears of it.
 */
interface Lifecycle {
    /** Linux's signal number of SIGHUP. */
    int SIGHUP = 1;

    /** Arranges for {@code close} to run when the process is told to stop. */
    void closeOnShutdown(Runnable close);

    /** Undoes {@link #closeOnShutdown} (start-up failed and the caller closed things itself). */
    void cancel();

    /** Blocks until the process stops. */
    void awaitShutdown() throws InterruptedException;

    /**
     * Arranges for {@code reload} to run on each SIGHUP, instead of the JVM's default (which shuts it
     * down). Tests do without signals.
     */
    default void reloadOnHangup(Runnable reload) {
    }

    /**
     * Every device listens: tells the service manager (systemd's READY=1) and, if it asked for a watchdog,
     * starts pinging it while {@code loopsAnswer} (every loop thread answers within the given ms) holds.
     * Tests do without.
     */
    default void ready(String status, java.util.function.LongPredicate loopsAnswer) {
    }

    /**
     * A hot upgrade handed everything to process {@code successorPid}: tell the service manager it is
     * the main process now and exit 0 at once, closing nothing (the kernel drops this process's copies
     * of the sockets, eventfds and memory; the successor serves them). Tests do without.
     */
    default void handedOver(long successorPid) {
    }

    /**
     * Taking over from a running jvhost failed before it was acknowledged: exit with status 1 at once,
     * closing nothing, so none of the sockets and files the running process still serves is touched (it
     * resumes when the handover link closes). Tests do without, and fail the usual way.
     */
    default void abandonTakeover(String why) {
    }

    /**
     * The process: a shutdown hook tells {@code notifier} STOPPING=1, closes the host, runs
     * {@code atExit}, then halts with status 0. Without the halt the JVM would report 128+signal (143
     * for SIGTERM) for what is the normal way to stop a daemon; since the halt also cuts short every
     * other shutdown hook (and {@code File.deleteOnExit}), last clean-ups go in {@code atExit}. A
     * reload on SIGHUP is framed by RELOADING=1 and READY=1.
     */
    static Lifecycle process(Runnable atExit, ServiceNotifier notifier) {
        return new Lifecycle() {
            private Thread hook;

            @Override
            public synchronized void closeOnShutdown(Runnable close) {
                hook = new Thread(() -> {
                    notifier.stopping();
                    close.run();
                    atExit.run();
                    System.err.flush();
                    Runtime.getRuntime().halt(0);
                }, "jvhost-shutdown");
                Runtime.getRuntime().addShutdownHook(hook);
            }

            @Override
            public synchronized void cancel() {
                if (hook != null) {
                    try {
                        Runtime.getRuntime().removeShutdownHook(hook);
                    } catch (IllegalStateException shuttingDownAlready) {
                        // the hook is running or about to; it closes the host itself
                    }
                    hook = null;
                }
            }

            @Override
            public void awaitShutdown() throws InterruptedException {
                new java.util.concurrent.CountDownLatch(1).await();
            }

            /**
             * sun.misc.Signal (module jdk.unsupported, kept for this use since JDK 9) runs the handler on
             * a new thread per signal; {@code reload} must serialize itself.
             */
            @Override
            public void reloadOnHangup(Runnable reload) {
                sun.misc.Signal hup = new sun.misc.Signal("HUP");
                sun.misc.SignalHandler handler = signal -> {
                    notifier.reloading();
                    try {
                        reload.run();
                    } finally {
                        notifier.ready("serving (after SIGHUP)");
                    }
                };
                if (sun.misc.Signal.handle(hup, handler) == sun.misc.SignalHandler.SIG_IGN) {
                    // Started with SIGHUP ignored (nohup): the JVM then keeps it ignored and never runs the
                    // handler. SIGHUP is our reload, as for any daemon, so it is taken back. A SIGHUP in the
                    // microseconds between the two calls would stop the process, as it would without nohup.
                    LinuxSys.defaultSignalDisposition(SIGHUP);
                    sun.misc.Signal.handle(hup, handler);
                    org.slf4j.LoggerFactory.getLogger(Lifecycle.class).info(
                            "SIGHUP was ignored when jvhost started (nohup?); it reloads all the same");
                }
            }

            @Override
            public void handedOver(long successorPid) {
                notifier.mainPid(successorPid);
                atExit.run();
                System.err.flush();
                Runtime.getRuntime().halt(0);
            }

            @Override
            public void abandonTakeover(String why) {
                org.slf4j.LoggerFactory.getLogger(Lifecycle.class).error("takeover failed, the running jvhost "
                        + "keeps serving: {}", why);
                System.err.flush();
                Runtime.getRuntime().halt(1);
            }

            @Override
            public void ready(String status, java.util.function.LongPredicate loopsAnswer) {
                notifier.ready(status);
                Watchdog.startIfAsked(System.getenv(), notifier, loopsAnswer);
            }
        };
    }
}
