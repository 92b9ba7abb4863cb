/**
 * The running device set: {@link org.jvhost.host.devices.DeviceManager} keeps the devices a host serves
 * and applies every change to them (the start-up set, control requests, config reloads), each checked
 * as a whole first ({@link org.jvhost.host.devices.PlannedDevice}: types, option keys, unique names and
 * sockets; then each provider's {@code create}). {@link org.jvhost.host.devices.DeviceHost} is what it
 * needs from the engine, an interface so the checks can be tested without sockets or workers.
 */
package org.jvhost.host.devices;
