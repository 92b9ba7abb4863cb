package org.jvhost.engine.event;

import org.jvhost.engine.sys.LinuxSys;
import org.jvhost.engine.sys.NativeException;
import org.jvhost.engine.virtq.CallNotifier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Signals the driver by writing the ring's call eventfd (SET_VRING_CALL). The session owns and closes
 * the fd, and swaps notifiers only on the queue's worker, so the fd stays open while this is in use.
 */
public final class EventfdNotifier implements CallNotifier {
    private static final Logger LOG = LoggerFactory.getLogger(EventfdNotifier.class);
    private final int fd;
    private final String what;
    private final QueueStats stats;
    private boolean reported;

    /** @param what names the device and queue for the one log line a failing fd gets */
    public EventfdNotifier(int fd, String what) {
        this(fd, what, null);
    }

    /**
     * @param what  names the device and queue for the one log line a failing fd gets
     * @param stats counts each signal as a call, or null
     */
    public EventfdNotifier(int fd, String what, QueueStats stats) {
        this.fd = fd;
        this.what = what;
        this.stats = stats;
    }

    @Override
    public void signal() {
        try {
            // false means the counter is saturated: the driver has a pending notification anyway
            LinuxSys.eventfdWrite(fd, 1);
            if (stats != null) {
                stats.called();
            }
        } catch (NativeException e) {
            if (!reported) {
                reported = true;
                LOG.warn("{}: call eventfd {} cannot be written: {}", what, fd, e.getMessage());
            }
        }
    }
}
