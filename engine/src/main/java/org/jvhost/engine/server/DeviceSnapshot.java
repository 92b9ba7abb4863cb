package org.jvhost.engine.server;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.jvhost.engine.device.DeviceRuntime;
import org.jvhost.engine.event.QueueStats;
import org.jvhost.spi.VhostUserDevice;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One device's state and counters at one moment, for the control API and metrics. Counters count from
 * the device's creation, across front-end connections; they are read without stopping the workers, so
 * two counters of one snapshot may be a few increments apart.
 *
 * @param name               the device's name
 * @param connected          whether a front-end is connected now
 * @param sessions           connections served so far, the current one included
 * @param failed             a device callback threw and the device waits for a reset
 * @param negotiatedFeatures the virtio features the front-end acknowledged; 0 without a connection
 * @param errors             errors outside any queue (a device fd watch threw)
 * @param counters           the device's own counters ({@link VhostUserDevice#counters()}), and in strict
 *                           mode the spec violations of its front-ends
 *                           ({@link org.jvhost.engine.instrument.Instrument#counters()})
 * @param queues             one entry per queue the device has
 */
public record DeviceSnapshot(String name, boolean connected, long sessions, boolean failed, long negotiatedFeatures,
                             long errors, Map<String, Long> counters, List<QueueSnapshot> queues) {

    private static final Logger LOG = LoggerFactory.getLogger(DeviceSnapshot.class);

    public DeviceSnapshot {
        counters = Collections.unmodifiableMap(new LinkedHashMap<>(counters));
        queues = List.copyOf(queues);
    }

    /**
     * One queue.
     *
     * @param index    the queue index (virtio-net: 2n is RX and 2n+1 is TX of pair n)
     * @param active   the device holds the queue (started and enabled)
     * @param kicks    notifications the device handled: the driver's kicks, and those the host delivers
     *                 itself (when the queue starts, when a kick fd is replaced, for buffers found while polling)
     * @param calls    signals written to the driver's call eventfd
     * @param errors   times the queue broke (a hostile descriptor) or a device callback for it threw
     * @param counters the device's own counters for this queue ({@link VhostUserDevice#queueCounters(int)})
     */
    public record QueueSnapshot(int index, boolean active, long kicks, long calls, long errors,
                                Map<String, Long> counters) {
        public QueueSnapshot {
            counters = Collections.unmodifiableMap(new LinkedHashMap<>(counters));
        }
    }

    static DeviceSnapshot of(DeviceServer server) {
        DeviceRuntime runtime = server.runtime();
        VhostUserDevice device = runtime.device();
        List<QueueSnapshot> queues = new ArrayList<>(runtime.queueCount());
        for (int i = 0; i < runtime.queueCount(); i++) {
            QueueStats q = runtime.queueStats(i);
            int index = i;
            queues.add(new QueueSnapshot(i, q.active(), q.kicks(), q.calls(), q.errors(),
                    deviceCounters(runtime.name(), () -> device.queueCounters(index))));
        }
        Map<String, Long> counters = deviceCounters(runtime.name(), device::counters);
        counters.putAll(runtime.instrument().counters());
        return new DeviceSnapshot(runtime.name(), server.connected(), server.sessions(), runtime.isFailed(),
                runtime.negotiatedFeatures(), runtime.deviceErrors(), counters, queues);
    }

    /** A plugin's counters; one that throws or returns nulls must not break the control API. */
    private static Map<String, Long> deviceCounters(String name, java.util.function.Supplier<Map<String, Long>> read) {
        try {
            Map<String, Long> m = read.get();
            if (m == null) {
                return new LinkedHashMap<>();
            }
            Map<String, Long> copy = new LinkedHashMap<>();
            m.forEach((k, v) -> {
                if (k != null && v != null) {
                    copy.put(k, v);
                }
            });
            return copy;
        } catch (Throwable e) {
            // plugin code: whatever it throws (an Error too) costs only its own counters
            LOG.warn("{}: reading the device's counters failed: {}", name, e.toString());
            return new LinkedHashMap<>();
        }
    }
}
