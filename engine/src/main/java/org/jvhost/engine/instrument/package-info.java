/**
 * The device as a test instrument for front-end developers: a decoded trace of every vhost-user
 * message ({@link org.jvhost.engine.instrument.ProtocolTrace}) and, in strict mode, a report of each
 * place where the front-end breaks the vhost-user or virtio spec
 * ({@link org.jvhost.engine.instrument.SpecChecker}). Both watch the message stream through one
 * {@link org.jvhost.engine.instrument.SessionTap} per connection and never change what the back-end
 * answers.
 */
package org.jvhost.engine.instrument;
