package org.jvhost.device.net;

import java.io.IOException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Which queues of a multi-queue TAP are attached (TUNSETQUEUE): exactly those whose frames the driver can
 * take. Pair 0's always, pair n's while its RX runs and, if the driver steers through the control queue,
 * n is below its VQ_PAIRS_SET count. A detached queue gets no frames from the kernel (which otherwise
 * spreads flows over all queues) and loses those it held (tun.c purges it), as the spec asks of pairs
 * beyond virtqueue_pairs.
 *
 * <p>The attachment is the TAP's, shared with a previous jvhost at a hot upgrade: a device created on a
 * handed-over TAP changes nothing until {@link #restore} says how the previous process left it (so its
 * first phase, while the previous process still serves, never re-steers traffic). Changed from the pair
 * workers (RX start and stop) and the control queue's worker: guarded by this.
 */
final class TapSteering {
    private static final Logger LOG = LoggerFactory.getLogger(TapSteering.class);

    private final String name;
    private final Tap tap;
    /** Whether pair n's RX queue runs. */
    private final boolean[] rxRunning;
    /** What TUNSETQUEUE last made of TAP queue n. */
    private final boolean[] attached;
    /** Pairs the driver enabled with VQ_PAIRS_SET; 0 while the front-end keeps the control queue. */
    private int driverPairs;
    /** Whether {@link #attached} is known: false on a handed-over TAP until {@link #restore}. */
    private boolean known;

    /** @param handedOver whether {@code tap} is still served by the previous jvhost (a hot upgrade) */
    TapSteering(String name, Tap tap, int pairs, boolean handedOver) {
        this.name = name;
        this.tap = tap;
        this.rxRunning = new boolean[pairs];
        this.attached = new boolean[pairs];
        java.util.Arrays.fill(attached, true); // as opened; steer() detaches the idle ones
        if (!handedOver) {
            known = true;
            steer();
        }
    }

    synchronized void setRxRunning(int pair, boolean running) {
        rxRunning[pair] = running;
        steer();
    }

    /**
     * Pair n's RX queue paused for a hot upgrade: it no longer runs, but its TAP queue stays as it is until
     * the next steer (the restart, here or in the successor), so the frames it holds are kept.
     */
    synchronized void pauseRx(int pair) {
        rxRunning[pair] = false;
    }

    /** VQ_PAIRS_SET, on the control queue's worker. */
    synchronized boolean enablePairs(int count) {
        driverPairs = count;
        steer();
        return true;
    }

    /** The control queue starts: the driver steers now; until VQ_PAIRS_SET it uses pair 0 only. */
    synchronized void controlStarted() {
        if (driverPairs == 0) {
            driverPairs = 1;
        }
        steer();
    }

    /** The device resets: the driver's pair count goes. */
    synchronized void reset() {
        driverPairs = 0;
        steer();
    }

    /** The driver's pair count and the attachment, for a hot upgrade's state. */
    synchronized int driverPairs() {
        return driverPairs;
    }

    synchronized boolean[] attached() {
        return attached.clone();
    }

    /**
     * A hot upgrade's state has come (the previous process has paused): {@code driverPairs} and the
     * attachment it left, which the rings' restarts then steer from. With {@code was} null (a version-1
     * state, which does not say) the idle queues are detached now, as a fresh device does.
     */
    synchronized void restore(int driverPairs, boolean[] was) {
        known = true;
        if (was == null) {
            steer();
            return;
        }
        this.driverPairs = driverPairs;
        System.arraycopy(was, 0, attached, 0, attached.length);
    }

    private void steer() {
        if (!known) {
            return;
        }
        for (int i = 0; i < attached.length; i++) {
            boolean wanted = i == 0 || rxRunning[i] && (driverPairs == 0 || i < driverPairs);
            if (wanted != attached[i]) {
                attached[i] = wanted;
                try {
                    tap.setQueueAttached(i, wanted);
                } catch (IOException e) {
                    LOG.warn("{}: {}", name, e.getMessage());
                }
            }
        }
    }
}
