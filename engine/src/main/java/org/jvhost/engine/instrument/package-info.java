/**
 * The device as a test instrument for front-end developers: a decoded trace of every vhost-user
 * message ({@link org.jvhost.engine.instrument.ProtocolTrace}); in strict mode, a report of each place
 * where the front-end breaks the vhost-user or virtio spec ({@link org.jvhost.engine.instrument.SpecChecker});
 * and faults a real back-end may legally commit, injected on purpose
 * ({@link org.jvhost.engine.instrument.FaultPlan}). All of them see the message stream through one
 * {@link org.jvhost.engine.instrument.SessionTap} per connection; only the faults change what the
 * back-end answers.
 */
package org.jvhost.engine.instrument;
