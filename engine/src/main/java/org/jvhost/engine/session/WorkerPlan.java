package org.jvhost.engine.session;

import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.jvhost.engine.event.Worker;
import org.jvhost.engine.protocol.ProtocolException;

/**
 * What one request still has to do after it was validated: commands for the workers of running rings,
 * and control-thread steps between them (close the fd a worker let go of, unmap the regions no queue
 * reads any more). Steps run one after another, in the order they were added; the request is answered
 * when the last has run.
 *
 * <p>A worker command that throws fails the request (the first failure is kept, as a
 * {@link ProtocolException} naming the step), but the steps after it still run: each worker step's
 * {@code after} callback learns whether its own command failed and cleans up accordingly.
 */
final class WorkerPlan {

    /**
     * One step: a command for {@code worker}, or a control-thread step if {@code worker} is null. A worker
     * command is done when it calls the {@code Runnable} it is given (a synchronous one, at its end).
     */
    private record Step(Worker worker, String what, Consumer<Runnable> command, Consumer<Throwable> after) {
    }

    /** A worker command that names itself, for the watchdog's report of a callback that hangs. */
    private record Named(String what, Runnable command) implements Runnable {
        @Override
        public void run() {
            command.run();
        }

        @Override
        public String toString() {
            return what;
        }
    }

    private final String device;
    private final ArrayDeque<Step> steps = new ArrayDeque<>();
    private Supplier<ByteBuffer> reply = () -> null;
    private ProtocolException failure;

    /** @param device the device's name, for what the workers report */
    WorkerPlan(String device) {
        this.device = device;
    }

    /**
     * Adds a command for {@code worker}, then {@code after} on the control thread with the command's
     * failure (null if it succeeded).
     */
    void onWorker(Worker worker, String what, Runnable command, Consumer<Throwable> after) {
        steps.add(new Step(worker, what, done -> {
            command.run();
            done.run();
        }, after));
    }

    /**
     * Adds a command for {@code worker} that finishes later: it is handed a {@code done} to run, on the
     * worker and once, when its work is over (outstanding requests of a ring completed, say); the plan
     * goes on only then. A command that throws is done at once, failed. The worker is never blocked
     * meanwhile; the command bounds its own wait.
     */
    void onWorkerAsync(Worker worker, String what, Consumer<Runnable> command, Consumer<Throwable> after) {
        steps.add(new Step(worker, what, command, after));
    }

    /** Adds a command for {@code worker} with nothing to do after it. */
    void onWorker(Worker worker, String what, Runnable command) {
        onWorker(worker, what, command, failed -> { });
    }

    /** Adds a control-thread step, run once the steps before it have. */
    void then(Runnable step) {
        steps.add(new Step(null, null, done -> step.run(), null));
    }

    /** The reply payload, computed once every step has run (a request whose answer the steps decide). */
    void reply(Supplier<ByteBuffer> payload) {
        this.reply = payload;
    }

    /** Whether a step is a worker command (else the plan runs to its end at once on the control thread). */
    boolean needsWorkers() {
        for (Step s : steps) {
            if (s.worker() != null) {
                return true;
            }
        }
        return false;
    }

    /** Records a failure of the request found outside a worker command (the first one is kept). */
    void fail(ProtocolException e) {
        if (failure == null) {
            failure = e;
        }
    }

    /** The first failure, or null. */
    ProtocolException failure() {
        return failure;
    }

    /** The reply payload (null for requests without one); call after the last step. */
    ByteBuffer replyPayload() {
        return reply.get();
    }

    /**
     * Runs the steps in order without ever waiting: control-thread steps run here, a worker command is
     * posted to its worker, which posts its completion back through {@code controlLoop}, where the
     * next steps run. {@code done} runs on the control loop after the last step. A worker that never
     * finishes its command leaves the rest of the plan (and {@code done}) undone: nothing it might
     * still read is released. Control thread.
     */
    void execute(Executor controlLoop, Runnable done) {
        Step s;
        while ((s = steps.poll()) != null) {
            if (s.worker() == null) {
                runControlStep(s);
                continue;
            }
            Step step = s;
            step.worker().execute(new Named(device + ": " + step.what(), () -> {
                AtomicBoolean finished = new AtomicBoolean();
                Consumer<Throwable> finish = f -> {
                    if (finished.compareAndSet(false, true)) {
                        controlLoop.execute(() -> {
                            completed(step, f);
                            execute(controlLoop, done);
                        });
                    }
                };
                try {
                    step.command().accept(() -> finish.accept(null));
                } catch (Throwable t) {
                    finish.accept(t);
                }
            }));
            return;
        }
        done.run();
    }

    /** A control step that throws (an engine bug) fails the request; the steps after it still run. */
    private void runControlStep(Step s) {
        try {
            s.command().accept(() -> { });
        } catch (RuntimeException e) {
            fail(ProtocolException.failed("releasing what the workers let go of failed: " + e, e));
        }
    }

    private void completed(Step step, Throwable failed) {
        if (failed != null) {
            fail(ProtocolException.failed(step.what() + " failed: " + failed.getMessage(), failed));
        }
        try {
            step.after().accept(failed);
        } catch (RuntimeException e) {
            fail(ProtocolException.failed(step.what() + ": releasing what the worker let go of failed: " + e, e));
        }
    }
}
