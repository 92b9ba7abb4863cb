/**
 * Moves vhost-user messages over the AF_UNIX socket, non-blocking and incrementally: header, then the
 * fds that came with it, then the body, never reading past the message at hand; enforces how many fds
 * each request may carry; receives fds with its own {@code recvmsg}, so every fd the kernel hands over is
 * the engine's to use or close, whatever the count (see {@link org.jvhost.engine.transport.SocketReader}).
 */
package org.jvhost.engine.transport;
