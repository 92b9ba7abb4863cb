/**
 * The device as a test instrument for front-end developers: a decoded trace of every vhost-user
 * message ({@link org.jvhost.engine.instrument.ProtocolTrace}); in strict mode, a report of each place
 * where the front-end breaks the vhost-user or virtio spec, on the messages
 * ({@link org.jvhost.engine.instrument.SpecChecker}) and on the rings
 * ({@link org.jvhost.engine.instrument.RingChecks}); and faults a real back-end may legally commit,
 * injected on purpose ({@link org.jvhost.engine.instrument.FaultPlan}), on the messages
 * ({@link org.jvhost.engine.instrument.FaultInjector}) and on the rings
 * ({@link org.jvhost.engine.instrument.DataPathFaults}). All of them see a connection through one
 * {@link org.jvhost.engine.instrument.SessionTap}; the rings only while strict mode or a data-path fault
 * is on, through the {@link org.jvhost.engine.instrument.InstrumentedQueue} the device is then handed.
 * Only the faults change what the back-end does.
 */
package org.jvhost.engine.instrument;
