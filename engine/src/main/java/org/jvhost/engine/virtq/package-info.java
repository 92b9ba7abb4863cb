/**
 * The split virtqueue (virtio 1.2 section 2.7), device side: {@link org.jvhost.engine.virtq.SplitQueue}
 * pops and validates descriptor chains from guest memory, returns them through the used ring and decides
 * when to notify, with the ring byte layouts in the {@code *Layout} classes; the packed virtqueue (section
 * 2.8), {@link org.jvhost.engine.virtq.PackedQueue}, does the same behind the same contract, and
 * {@link org.jvhost.engine.virtq.HostQueue} is what the host uses of either.
 */
package org.jvhost.engine.virtq;
