/**
 * The engine's front door: {@link org.jvhost.engine.server.Host} owns the worker pool, a few control
 * loops multiplexing every device's sockets (listening, connecting with back-off, reading messages
 * incrementally), and per device a socket policy (file mode, group, allowed front-end uids).
 */
package org.jvhost.engine.server;
