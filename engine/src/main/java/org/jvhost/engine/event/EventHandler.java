package org.jvhost.engine.event;

/** Something a worker calls when an fd in its epoll set is ready. Runs on the worker thread. */
@FunctionalInterface
public interface EventHandler {
    /** @param events the epoll event bits ({@code EPOLLIN}, {@code EPOLLHUP}...) */
    void onReady(int events);
}
