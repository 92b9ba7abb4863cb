/**
 * The event loop: a fixed pool of worker threads, each with its own epoll set, serving kick eventfds and
 * device fd watches, and running commands posted by control threads. Every queue callback of a device
 * (start, kick, stop, memory update) runs here, on the worker of the queue's group, so a running queue
 * is only ever touched by one thread. A watchdog thread reports a callback that hangs, with its stack.
 */
package org.jvhost.engine.event;
