/**
 * Moves vhost-user messages over the AF_UNIX socket, non-blocking and incrementally: header, then the
 * fds that came with it, then the body, never reading past the message at hand; enforces how many fds
 * each request may carry; turns every received fd into one the engine owns (junixsocket's own copy is
 * closed the Java way, see {@link org.jvhost.engine.transport.Endpoint}).
 */
package org.jvhost.engine.transport;
