package org.jvhost.engine.event;

/**
 * A queue whose device returned from a callback with work left (it stopped after a budget of chains,
 * or left notifications off so the driver will not kick again). Its worker calls {@link #serveReady}
 * again soon, in turn with the other ready queues and between checks of its epoll set and commands,
 * so one busy ring cannot keep the thread from everything else it serves (see {@link Worker#markReady}).
 */
public interface ReadyQueue {

    /**
     * Hands the device another kick, on the worker thread. The queue has already left the ready list;
     * it puts itself back ({@link Worker#markReady}) if the device again leaves work.
     */
    void serveReady();
}
