/**
 * The engine's front door: {@link org.jvhost.engine.server.Host} owns the worker pool and, per device,
 * a socket (listening, or connecting to a listening front-end) and a control thread that serves one
 * connection at a time.
 */
package org.jvhost.engine.server;
