/**
 * Guest memory as the host sees it: regions mapped from the front-end's fds
 * ({@link org.jvhost.engine.memory.MappedRegion}) gathered into immutable, allocation-free lookup
 * snapshots ({@link org.jvhost.engine.memory.GuestMemoryMap}) that translate guest-physical and
 * front-end virtual addresses.
 */
package org.jvhost.engine.memory;
