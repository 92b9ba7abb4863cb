/**
 * The device author's test kit: fake guest memory and a driver-side split queue to unit-test a device,
 * and {@link org.jvhost.testkit.ScriptedFrontend}, a vhost-user front-end in Java that drives a real
 * host over a real socket.
 */
package org.jvhost.testkit;
