package org.jvhost.device.net;

import org.jvhost.spi.DeviceContext;

/**
 * For {@code org.jvhost.bench.NetPathBench}: a TAP that moves no bytes, so that a benchmark times the net
 * device's own per-frame work (chains popped, iovecs laid out, results counted, used entries published)
 * without the kernel's. A read "finds" a frame of {@code frameLength} bytes (header included) while
 * {@link #queue} has frames left, then -EAGAIN; a write "takes" every frame whole. It lives in the
 * device's package because {@link Tap} and the device's constructor are not public.
 */
public final class BenchTap implements Tap {
    private final int frameLength;
    private int queued;
    private Runnable onReadable;

    /** @param frameLength what every read and write reports: header plus frame bytes */
    public BenchTap(int frameLength) {
        this.frameLength = frameLength;
    }

    /** A net device with one queue pair over this TAP; the RX readiness callback is {@link #readable}. */
    public NetDevice device(String name) {
        NetConfig config = new NetConfig(name, null, null, 0, 1, NetConfig.Uring.OFF);
        return new NetDevice(name, config, this, new DeviceContext() {
            @Override
            public String deviceName() {
                return name;
            }

            @Override
            public FdWatch watchReadable(int fd, int queueGroup, Runnable callback) {
                onReadable = callback;
                return new FdWatch() {
                    @Override public void pause() { }
                    @Override public void resume() { }
                    @Override public void close() { }
                };
            }
        });
    }

    /** {@code frames} more frames for the device's reads to find. */
    public void queue(int frames) {
        queued += frames;
    }

    /** The TAP became readable: runs the device's RX callback, as the worker's epoll loop would. */
    public void readable() {
        onReadable.run();
    }

    @Override
    public void readFrames(int queue, long iov, int[] firsts, int[] counts, int frames, long[] results) {
        for (int i = 0; i < frames; i++) {
            results[i] = readv(queue, 0, counts[i]);
        }
    }

    @Override
    public void writeFrames(int queue, long iov, int[] firsts, int[] counts, int frames, long[] results) {
        for (int i = 0; i < frames; i++) {
            results[i] = frameLength;
        }
    }

    @Override
    public long readv(int queue, long iov, int iovcnt) {
        if (queued == 0) {
            return -TapNatives.EAGAIN;
        }
        queued--;
        return frameLength;
    }

    @Override
    public long writev(int queue, long iov, int iovcnt) {
        return frameLength;
    }

    @Override public String name() { return "bench-tap"; }
    @Override public int queueCount() { return 1; }
    @Override public int fd(int queue) { return -1; }
    @Override public void setQueueAttached(int queue, boolean attached) { }
    @Override public int supportedOffloads() { return 0; }
    @Override public void setOffloads(int tunFlags) { }
    @Override public void setHeaderLength(int bytes) { }
    @Override public void close() { }
}
