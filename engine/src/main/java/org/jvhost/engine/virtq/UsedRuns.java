package org.jvhost.engine.virtq;

/**
 * Runs of held-back used entries that one entry may stand for under VIRTIO_F_IN_ORDER (virtio 1.2, "In-order
 * use of descriptors"): consecutive buffers the device wrote nothing into. Their used lengths are all 0,
 * so the run's last id tells the driver everything the others would have. Entries with bytes written
 * keep one used entry each, since the driver needs each length. For split rings, found at publish;
 * {@link PackedQueue} joins a run as each buffer is added instead.
 */
final class UsedRuns {
    private UsedRuns() {
    }

    /** The last index of the run starting at {@code i} among {@code lens[0..n)}: {@code i} unless lens[i] is 0. */
    static int end(int[] lens, int i, int n) {
        if (lens[i] != 0) {
            return i;
        }
        while (i + 1 < n && lens[i + 1] == 0) {
            i++;
        }
        return i;
    }
}
