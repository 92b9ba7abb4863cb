/**
 * The device author's test kit: {@link org.jvhost.testkit.FakeGuestMemory} (guest memory backed by
 * plain buffers), {@link org.jvhost.testkit.MockSplitQueue} (the guest driver's side of a split ring,
 * including hostile rings) and {@link org.jvhost.testkit.CountingNotifier}, so a device's unit tests drive
 * it through the engine's real {@link org.jvhost.engine.virtq.SplitQueue} exactly as a guest would;
 * and {@link org.jvhost.testkit.ScriptedFrontend}, a vhost-user front-end in Java that drives a real
 * host over a real socket with memfd-backed guest memory.
 */
package org.jvhost.testkit;
