package org.jvhost.engine.session;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.jvhost.engine.event.Worker;
import org.jvhost.engine.sys.LinuxSys;

/**
 * How started rings stop on their workers (GET_VRING_BASE, a reset, a hot upgrade's pause), for
 * {@link VringLifecycle}. Control thread; the stops themselves run on the workers.
 */
final class RingStops {

    private RingStops() {
    }

    /**
     * Stops the started rings {@code qs} in their order, remembering where each stopped as its next base;
     * {@code pause} keeps the kick fds for a restart ({@link VringLifecycle#pause}), else a ring restarts only with a
     * new SET_VRING_KICK, which brings its own. The device gives each queue back first; then the stop
     * waits, on the worker and bounded ({@link Ring#whenQuiet}), for the chains it deferred: QEMU's
     * vhost-user-blk expects in-flight requests finished before GET_VRING_BASE is answered. What completes
     * later is dropped, and the base counts it as consumed. One worker command per worker stops all of its
     * rings: each hop between the control thread and a worker waits for a wake-up, and on a busy host one
     * took 10-30 ms, one per ring, in a hot upgrade's pause (measured).
     */
    static void stop(List<QueueConfig> qs, WorkerPlan plan, boolean pause) {
        Map<Worker, List<QueueConfig>> byWorker = new LinkedHashMap<>();
        for (QueueConfig q : qs) {
            byWorker.computeIfAbsent(q.ring.worker, w -> new ArrayList<>()).add(q);
        }
        byWorker.forEach((worker, group) -> stopOn(worker, group, plan, pause));
    }

    private static void stopOn(Worker worker, List<QueueConfig> group, WorkerPlan plan, boolean pause) {
        Ring[] stopping = group.stream().map(q -> q.ring).toArray(Ring[]::new);
        int[] next = group.stream().mapToInt(q -> q.base).toArray();
        int[] left = {stopping.length};
        plan.onWorkerAsync(worker, "stop of queue(s) " + group.stream().map(q -> String.valueOf(q.index))
                .collect(Collectors.joining(",")), done -> {
            for (int i = 0; i < stopping.length; i++) {
                Ring ring = stopping[i];
                int k = i;
                ring.stop(pause);
                ring.whenQuiet("stop", () -> {
                    try {
                        ring.queue.closeDeferred();
                        // spec: after GET_VRING_BASE the ring writes nothing more, so its last writes are marked now
                        ring.queue.setLog(null);
                        next[k] = ring.queue.vringBase();
                    } finally {
                        if (--left[0] == 0) { // worker only: every ring's wait ends on this thread
                            done.run();
                        }
                    }
                });
            }
        }, failed -> {
            for (int i = 0; i < stopping.length; i++) {
                QueueConfig q = group.get(i);
                q.ring = null;
                q.base = next[i];
                q.paused = pause && failed == null;
                if (!pause) {
                    LinuxSys.closeQuietly(q.kickFd);
                    q.kickFd = -1;
                }
            }
        });
    }
}
