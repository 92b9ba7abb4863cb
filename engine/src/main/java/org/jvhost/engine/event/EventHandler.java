package org.jvhost.engine.event;

/** Something a loop thread (a worker, a control loop) calls when an fd in its epoll set is ready; runs on that thread. */
@FunctionalInterface
public interface EventHandler {
    /** @param events the epoll event bits ({@code EPOLLIN}, {@code EPOLLHUP}...) */
    void onReady(int events);
}
