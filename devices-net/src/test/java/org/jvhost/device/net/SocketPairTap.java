package org.jvhost.device.net;

import com.sun.jna.LastErrorException;
import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Pointer;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A {@link Tap} for tests: each queue is one end of a SOCK_SEQPACKET socket pair, which keeps frame
 * boundaries as a TAP does; the test holds the other end ({@link #send}, {@link #receive}). Reads use
 * recvmsg with MSG_TRUNC so an oversized frame reports its full length, as a TAP's read does.
 * A batched one writes and reads through an {@link IovecRing} per queue, as {@link LinuxTap} does (its
 * reads through the ring do not report a truncated frame's full length).
 */
final class SocketPairTap implements Tap {
    static {
        Native.register(SocketPairTap.class, NativeLibrary.getInstance("c"));
    }

    private static final int AF_UNIX = 1;
    private static final int SOCK_SEQPACKET = 5;
    private static final int SOCK_NONBLOCK = 0x800;
    private static final int MSG_DONTWAIT = 0x40;
    private static final int MSG_TRUNC = 0x20;

    private static native int socketpair(int domain, int type, int protocol, int[] sv) throws LastErrorException;

    private static native long recvmsg(int fd, Pointer msg, int flags);

    private static native long write(int fd, byte[] buf, long count) throws LastErrorException;

    private static native long read(int fd, byte[] buf, long count);

    private static native int close(int fd) throws LastErrorException;

    private final int[] deviceFds;
    private final int[] peerFds;
    private final int supported;
    /** {@code struct msghdr} (56 bytes on LP64), one per queue: iov at 16, iovlen at 24. */
    private final Memory[] msghdrs;
    final List<Integer> offloadCalls = new ArrayList<>();
    final List<Integer> headerLengthCalls = new ArrayList<>();
    final boolean[] attached;
    /** Runs before every frame the device writes (tests observe the rings mid-drain); not when batched. */
    Runnable beforeWrite = () -> { };
    /**
     * Not batched: the read with this number (counting every readv from 0) finds no frame (-EAGAIN) without
     * reading, and the reads after it in the same batch go on: a frame that arrives just after a batched
     * read found the queue empty. -1: none.
     */
    int emptyRead = -1;
    private int reads;
    /** Per queue, when batched: the io_uring the device's writes and reads go through. */
    private final IovecRing[] rings;

    SocketPairTap(int queues, int supportedOffloads) {
        this(queues, supportedOffloads, false);
    }

    SocketPairTap(int queues, int supportedOffloads, boolean batched) {
        rings = new IovecRing[batched ? queues : 0];
        deviceFds = new int[queues];
        peerFds = new int[queues];
        msghdrs = new Memory[queues];
        attached = new boolean[queues];
        Arrays.fill(attached, true);
        for (int q = 0; q < queues; q++) {
            int[] sv = new int[2];
            socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv);
            deviceFds[q] = sv[0];
            peerFds[q] = sv[1];
            msghdrs[q] = new Memory(56);
            msghdrs[q].clear();
            if (batched) {
                try {
                    rings[q] = IovecRing.create(PairDataPath.TX_BATCH);
                } catch (IOException e) {
                    throw new IllegalStateException(e);
                }
            }
        }
        this.supported = supportedOffloads;
    }

    /** The test writes a frame (header included) as if the kernel had queued it on the TAP. */
    void send(int queue, byte[] frame) {
        write(peerFds[queue], frame, frame.length);
    }

    /** The test's end of queue {@code queue}: what it writes, the device's end reads. */
    int peerFd(int queue) {
        return peerFds[queue];
    }

    /** Closes the test's end of queue {@code queue}: the device's writes then fail (EPIPE). */
    void closePeer(int queue) {
        close(peerFds[queue]);
        peerFds[queue] = -1;
    }

    /** The next frame the device wrote to the TAP queue, or null if none is queued. */
    byte[] receive(int queue) {
        byte[] buf = new byte[70000];
        long n = read(peerFds[queue], buf, buf.length);
        return n < 0 ? null : Arrays.copyOf(buf, (int) n);
    }

    @Override
    public String name() {
        return "fake-tap";
    }

    @Override
    public int queueCount() {
        return deviceFds.length;
    }

    @Override
    public int fd(int queue) {
        return deviceFds[queue];
    }

    private long recv(int queue, long iov, int iovcnt) {
        Memory msg = msghdrs[queue];
        msg.setLong(16, iov);
        msg.setLong(24, iovcnt);
        long n = recvmsg(deviceFds[queue], msg, MSG_DONTWAIT | MSG_TRUNC);
        return n >= 0 ? n : -Native.getLastError();
    }

    @Override
    public long writev(int queue, long iov, int iovcnt) {
        beforeWrite.run();
        long n = TapNatives.writev(deviceFds[queue], iov, iovcnt);
        return n >= 0 ? n : -TapNatives.errno();
    }

    @Override
    public void writeFrames(int queue, long iov, int[] firsts, int[] counts, int frames, long[] results) {
        if (rings.length == 0) {
            Tap.super.writeFrames(queue, iov, firsts, counts, frames, results);
        } else if (rings[queue].writev(deviceFds[queue], iov, firsts, counts, frames, results) != 0) {
            throw new IllegalStateException("io_uring_enter failed");
        }
    }

    @Override
    public void readFrames(int queue, long iov, int[] firsts, int[] counts, int frames, long[] results) {
        if (rings.length > 0) {
            if (rings[queue].readv(deviceFds[queue], iov, firsts, counts, frames, results) != 0) {
                throw new IllegalStateException("io_uring_enter failed");
            }
            return;
        }
        int first = reads;
        if (emptyRead < first || emptyRead >= first + frames) {
            Tap.super.readFrames(queue, iov, firsts, counts, frames, results);
            return;
        }
        for (int i = 0; i < frames; i++) {
            results[i] = reads++ == emptyRead ? -TapNatives.EAGAIN
                    : recv(queue, TapNatives.iovecAt(iov, firsts[i]), counts[i]);
        }
    }

    @Override
    public long readv(int queue, long iov, int iovcnt) {
        reads++;
        return recv(queue, iov, iovcnt);
    }

    @Override
    public void setQueueAttached(int queue, boolean on) {
        attached[queue] = on;
    }

    @Override
    public int supportedOffloads() {
        return supported;
    }

    @Override
    public void setOffloads(int tunFlags) throws IOException {
        if ((tunFlags & ~supported) != 0) {
            throw new IOException("fake TAP: offloads 0x" + Integer.toHexString(tunFlags) + " not supported");
        }
        offloadCalls.add(tunFlags);
    }

    @Override
    public void setHeaderLength(int bytes) {
        headerLengthCalls.add(bytes);
    }

    @Override
    public void close() {
        for (IovecRing ring : rings) {
            ring.close();
        }
        for (int q = 0; q < deviceFds.length; q++) {
            close(deviceFds[q]);
            if (peerFds[q] >= 0) {
                close(peerFds[q]);
            }
        }
    }
}
