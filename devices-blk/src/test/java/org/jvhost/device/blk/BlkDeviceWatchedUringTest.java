package org.jvhost.device.blk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.virtio.VirtioBlk;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Every {@link BlkDeviceUringTest} case again with a host that watches fds: the device hands the ring's
 * completion eventfd to it at the queue's start, and completions are reaped by the watch's callback instead
 * of a reaper thread. The watch here is a thread that calls back every 100 microseconds whether or not the
 * eventfd is readable (a spurious wake-up is harmless to the device); it checks the fd is an eventfd.
 */
class BlkDeviceWatchedUringTest extends BlkDeviceUringTest {
    private final AtomicInteger watches = new AtomicInteger();
    private final AtomicInteger open = new AtomicInteger();
    private volatile PollingWatch last;

    @Override
    DeviceContext context() {
        return new DeviceContext() {
            @Override
            public String deviceName() {
                return "blk@test";
            }

            @Override
            public FdWatch watchReadable(int fd, int queueGroup, Runnable onReadable) {
                assertTrue(isEventfd(fd), "fd " + fd + " is an eventfd");
                watches.incrementAndGet();
                last = new PollingWatch(onReadable);
                return last;
            }
        };
    }

    @AfterEach
    @Override
    void close() {
        super.close();
        assertEquals(0, open.get(), "watches still open after the device closed");
    }

    @Test
    void theFirstQueueStartWatchesTheRingsEventfdOnce() throws Exception {
        open();
        device.startQueue(0, device.stopQueue(0));
        assertEquals(1, watches.get());
    }

    /**
     * The host pauses a failed device's fd watches and does not resume them when the front-end's reset
     * clears the failure: the next queue start does, or the disk's completions would wait for the next kick.
     */
    @Test
    void aQueueStartedAgainResumesAWatchTheHostPausedAndReaps() throws Exception {
        open();
        last.pause(); // the device failed: the host stops calling back
        device.reset(); // the front-end resets it: the failure is cleared
        device.startQueue(0, queue);
        assertTrue(!last.paused, "the watch runs again");
        assertEquals(VirtioBlk.S_OK, statusOf(write(2, pattern(VirtioBlk.SECTOR_SIZE, 4))));
        assertEquals(1, watches.get(), "the same watch");
    }

    private static boolean isEventfd(int fd) {
        try {
            return Files.readString(Path.of("/proc/self/fdinfo/" + fd)).contains("eventfd-count");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Calls back until closed, from a thread of its own; close waits for it, as the host's does. */
    private final class PollingWatch implements DeviceContext.FdWatch {
        private volatile boolean running = true;
        private volatile boolean paused;
        private final Thread thread;

        PollingWatch(Runnable onReadable) {
            open.incrementAndGet();
            thread = new Thread(() -> {
                while (running) {
                    if (!paused) {
                        onReadable.run();
                    }
                    java.util.concurrent.locks.LockSupport.parkNanos(100_000);
                }
            }, "test-fd-watch");
            thread.setDaemon(true);
            thread.start();
        }

        @Override
        public void pause() {
            paused = true;
        }

        @Override
        public void resume() {
            paused = false;
        }

        @Override
        public void close() {
            running = false;
            try {
                thread.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            open.decrementAndGet();
        }
    }
}
