/**
 * The engine's front door: {@link org.jvhost.engine.server.Host} owns the worker pool, a few control
 * loops multiplexing every device's sockets (listening, connecting with back-off, reading messages
 * incrementally), and per device a socket policy (file mode, group, allowed front-end uids): a
 * {@link org.jvhost.engine.server.DeviceServer} meets one device's front-ends, its
 * {@link org.jvhost.engine.server.Listener} accepts them (or its {@link org.jvhost.engine.server.Connector}
 * connects to them), a {@link org.jvhost.engine.server.Connection}
 * serves one. A hot
 * upgrade hands all of it to a successor process: {@link org.jvhost.engine.server.Handover} (running
 * side), {@link org.jvhost.engine.server.Takeover} (successor), {@link org.jvhost.engine.server.HandoverLayout}
 * (the wire format).
 */
package org.jvhost.engine.server;
