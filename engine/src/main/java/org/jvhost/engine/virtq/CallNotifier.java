package org.jvhost.engine.virtq;

/** How a queue signals the driver ("used buffers"): the call eventfd in production, a counter in tests. */
@FunctionalInterface
public interface CallNotifier {
    /** Signals the driver. Must not throw; a failure is logged by the implementation. */
    void signal();

    /** A notifier that does nothing (no call fd set: the front-end polls). */
    CallNotifier NONE = () -> { };
}
