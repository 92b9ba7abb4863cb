package org.jvhost.device.net;

import java.util.ArrayList;
import java.util.List;
import org.jvhost.spi.DeviceContext;

/** A {@link DeviceContext} whose watches the test fires by hand, recording pause and resume. */
final class RecordingContext implements DeviceContext {

    /** One watch: the test calls {@link #fire()} where a host's event loop would see readiness. */
    static final class Watch implements FdWatch {
        final int fd;
        final int group;
        final Runnable onReadable;
        boolean paused;
        boolean closed;
        int pauses;

        Watch(int fd, int group, Runnable onReadable) {
            this.fd = fd;
            this.group = group;
            this.onReadable = onReadable;
        }

        /** Delivers readiness as a level-triggered host would: only while not paused. */
        boolean fire() {
            if (paused || closed) {
                return false;
            }
            onReadable.run();
            return true;
        }

        @Override
        public void pause() {
            paused = true;
            pauses++;
        }

        @Override
        public void resume() {
            paused = false;
        }

        @Override
        public void close() {
            closed = true;
        }
    }

    final List<Watch> watches = new ArrayList<>();

    @Override
    public String deviceName() {
        return "net@test";
    }

    @Override
    public FdWatch watchReadable(int fd, int queueGroup, Runnable onReadable) {
        Watch w = new Watch(fd, queueGroup, onReadable);
        watches.add(w);
        return w;
    }

    /** The open watch on {@code fd}. */
    Watch watchOn(int fd) {
        for (int i = watches.size() - 1; i >= 0; i--) {
            if (watches.get(i).fd == fd && !watches.get(i).closed) {
                return watches.get(i);
            }
        }
        throw new AssertionError("no open watch on fd " + fd);
    }
}
