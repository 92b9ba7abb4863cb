/**
 * The control socket's transport: a line-based request/response protocol on a Unix socket, served by
 * one selector thread for all clients ({@link org.jvhost.host.control.ControlServer}), its client, and
 * the one-line JSON its responses are written in. What the requests mean is the CLI's business.
 */
package org.jvhost.host.control;
