/**
 * The vhost-user wire codec: request codes, the 12-byte header, payload layouts and the syntax checks
 * that need nothing but the bytes (version, reserved flag bits, payload sizes). It knows nothing about
 * sockets, fds or device state. Spec: QEMU {@code docs/interop/vhost-user.rst}, "Message Specification".
 */
package org.jvhost.engine.protocol;
