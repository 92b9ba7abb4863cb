/**
 * Guest memory as the host sees it: regions mapped from the front-end's fds
 * ({@link org.jvhost.engine.memory.MappedRegion}, sealed against shrinking where the file allows it)
 * gathered into immutable, allocation-free lookup snapshots ({@link org.jvhost.engine.memory.GuestMemoryMap})
 * that translate guest-physical and front-end virtual addresses, within a per-connection and host-wide
 * limit on what may be mapped ({@link org.jvhost.engine.memory.MemoryBudget}).
 */
package org.jvhost.engine.memory;
