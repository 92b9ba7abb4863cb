/**
 * The vhost-user protocol state machine of one connection: feature negotiation, the memory table, and
 * the passive per-ring configuration that becomes a live queue when the ring is started and enabled
 * (spec "Ring states"). It runs on the connection's control thread and touches a running queue only by
 * posting commands to the queue's worker, never waiting for them: a request that needs workers is
 * answered when they have done their part ({@link org.jvhost.engine.session.WorkerPlan}).
 */
package org.jvhost.engine.session;
