package org.jvhost.device.net;

import com.sun.jna.LastErrorException;
import com.sun.jna.Memory;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Linux TAP opened through {@code /dev/net/tun} with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, plus
 * IFF_MULTI_QUEUE and one file descriptor per queue when there is more than one queue
 * (Documentation/networking/tuntap.rst, "Multiqueue tuntap interface"). All queues are non-blocking.
 *
 * <p>Each queue may have an io_uring ({@link TapRings}) so a batch of frames costs one system call,
 * either way; without one (uring=off, or a kernel that refuses io_uring) every frame is one writev or readv.
 */
final class LinuxTap implements Tap {
    private static final Logger LOG = LoggerFactory.getLogger(LinuxTap.class);
    private static final String TUN_DEVICE = "/dev/net/tun";
    private static final int REQUIRED_FLAGS = TapNatives.IFF_TAP | TapNatives.IFF_NO_PI | TapNatives.IFF_VNET_HDR;

    private final String name;
    private final int[] fds;
    private final int supportedOffloads;
    /** The io_uring per queue for batched writes and reads, if any. */
    private final TapRings rings;
    private boolean closed;

    /**
     * @param knownOffloads the TUN offloads the kernel takes, if known (a TAP handed over at a hot upgrade:
     *                      its settings are then left as they are, still the previous process's while it
     *                      may resume); -1 to probe them and reset the header length and offloads
     */
    private LinuxTap(String name, int[] fds, NetConfig.Uring uring, int knownOffloads) throws IOException {
        this.name = name;
        this.fds = fds;
        if (knownOffloads < 0) {
            setHeaderLength(org.jvhost.spi.virtio.VirtioNet.HDR_LEN);
            this.supportedOffloads = probeOffloads();
            setOffloads(0);
        } else {
            this.supportedOffloads = knownOffloads;
        }
        this.rings = TapRings.create(name, fds, uring);
    }

    /**
     * Attaches {@code queues} new file descriptors to the TAP {@code name}, creating the TAP if it does
     * not exist (it then disappears when the last descriptor closes).
     *
     * @throws IOException naming the TAP, the errno and what to do about it
     */
    static LinuxTap open(String name, int queues, NetConfig.Uring uring) throws IOException {
        int[] fds = new int[queues];
        Arrays.fill(fds, -1);
        try {
            for (int q = 0; q < queues; q++) {
                fds[q] = openTunDevice();
                if (q == 0) {
                    checkKernelFeatures(fds[0], queues);
                }
                int flags = REQUIRED_FLAGS | (queues > 1 ? TapNatives.IFF_MULTI_QUEUE : 0);
                setIff(fds[q], name, flags, queues);
            }
            return new LinuxTap(name, fds, uring, -1);
        } catch (IOException | RuntimeException e) {
            closeAll(fds);
            throw e;
        }
    }

    /**
     * Takes over TAP file descriptors opened by someone else (libvirt, a wrapper with CAP_NET_ADMIN) and
     * inherited by jvhost. They must be attached to one TAP with IFF_TAP, IFF_NO_PI and IFF_VNET_HDR,
     * and with IFF_MULTI_QUEUE if there is more than one.
     */
    static LinuxTap adopt(int[] fds, NetConfig.Uring uring) throws IOException {
        return new LinuxTap(check(fds), fds.clone(), uring, -1);
    }

    /**
     * A hot upgrade's TAP: the previous process's queues ({@code fds}, checked as in {@link #adopt}), whose
     * settings stay untouched until the front-end's replayed negotiation sets them ({@code supportedOffloads}
     * as that process probed them): if the upgrade fails, that process serves on with its own.
     */
    static LinuxTap handedOver(int[] fds, int supportedOffloads, NetConfig.Uring uring) throws IOException {
        return new LinuxTap(check(fds), fds.clone(), uring, supportedOffloads);
    }

    /** Checks that {@code fds} are queues of one usable TAP and makes them non-blocking; the TAP's name. */
    private static String check(int[] fds) throws IOException {
        String name = null;
        for (int fd : fds) {
            Memory ifr = new Memory(TapNatives.IFREQ_SIZE);
            ifr.clear();
            try {
                TapNatives.ioctl(fd, TapNatives.TUNGETIFF, ifr);
            } catch (LastErrorException e) {
                throw new IOException("tapfd " + fd + " is not a TAP file descriptor jvhost can use (TUNGETIFF: "
                        + TapNatives.errnoName(e.getErrorCode()) + (e.getErrorCode() == TapNatives.EBADF
                        ? ", no such open file descriptor: start jvhost with the fd inherited" : "") + ")");
            }
            int flags = ifr.getShort(TapNatives.IFREQ_FLAGS) & 0xffff;
            String fdName = ifr.getString(0, StandardCharsets.US_ASCII.name());
            if ((flags & REQUIRED_FLAGS) != REQUIRED_FLAGS) {
                throw new IOException("tapfd " + fd + " (" + fdName + ") was opened with flags 0x" + Integer.toHexString(flags)
                        + ": jvhost needs IFF_TAP | IFF_NO_PI | IFF_VNET_HDR (0x" + Integer.toHexString(REQUIRED_FLAGS) + ")");
            }
            if (fds.length > 1 && (flags & TapNatives.IFF_MULTI_QUEUE) == 0) {
                throw new IOException("tapfd " + fd + " (" + fdName + ") is not a multi-queue TAP, but " + fds.length
                        + " fds were given for " + fds.length + " queue pairs");
            }
            if (name != null && !name.equals(fdName)) {
                throw new IOException("tapfd " + fd + " belongs to TAP " + fdName + ", the previous fds to " + name
                        + ": all queues must be of one TAP");
            }
            name = fdName;
            try {
                int fl = TapNatives.fcntl(fd, TapNatives.F_GETFL, 0);
                TapNatives.fcntl(fd, TapNatives.F_SETFL, fl | TapNatives.O_NONBLOCK);
            } catch (LastErrorException e) {
                throw new IOException("tapfd " + fd + ": cannot make it non-blocking: " + TapNatives.errnoName(e.getErrorCode()));
            }
        }
        return name;
    }

    private static int openTunDevice() throws IOException {
        try {
            return TapNatives.open(TUN_DEVICE, TapNatives.O_RDWR | TapNatives.O_NONBLOCK | TapNatives.O_CLOEXEC);
        } catch (LastErrorException e) {
            int errno = e.getErrorCode();
            String hint = errno == TapNatives.ENOENT || errno == TapNatives.ENODEV
                    ? ": the tun driver is missing (modprobe tun)"
                    : errno == TapNatives.EACCES || errno == TapNatives.EPERM
                    ? ": jvhost's user may not open it (it is normally mode 0666; check the device node and any"
                      + " seccomp/cgroup device policy)" : "";
            throw new IOException("cannot open " + TUN_DEVICE + " (" + TapNatives.errnoName(errno) + ")" + hint);
        }
    }

    /** TUNGETFEATURES: refuses a kernel whose tun driver lacks the flags jvhost relies on. */
    private static void checkKernelFeatures(int fd, int queues) throws IOException {
        Memory features = new Memory(4);
        try {
            TapNatives.ioctl(fd, TapNatives.TUNGETFEATURES, features);
        } catch (LastErrorException e) {
            throw new IOException("TUNGETFEATURES failed (" + TapNatives.errnoName(e.getErrorCode()) + ")");
        }
        int supported = features.getInt(0);
        int needed = REQUIRED_FLAGS | (queues > 1 ? TapNatives.IFF_MULTI_QUEUE : 0);
        if ((supported & needed) != needed) {
            throw new IOException("the kernel's tun driver supports flags 0x" + Integer.toHexString(supported)
                    + ", jvhost needs 0x" + Integer.toHexString(needed)
                    + (queues > 1 ? " (IFF_MULTI_QUEUE for queues=" + queues + ")" : ""));
        }
    }

    private static void setIff(int fd, String name, int flags, int queues) throws IOException {
        Memory ifr = new Memory(TapNatives.IFREQ_SIZE);
        ifr.clear();
        byte[] nameBytes = name.getBytes(StandardCharsets.US_ASCII);
        ifr.write(0, nameBytes, 0, nameBytes.length);
        ifr.setShort(TapNatives.IFREQ_FLAGS, (short) flags);
        try {
            TapNatives.ioctl(fd, TapNatives.TUNSETIFF, ifr);
        } catch (LastErrorException e) {
            throw new IOException(setIffError(name, e.getErrorCode(), queues));
        }
    }

    /** What TUNSETIFF's errno means for the operator (drivers/net/tun.c, tun_set_iff). */
    static String setIffError(String name, int errno, int queues) {
        String mq = queues > 1 ? " multi_queue" : "";
        switch (errno) {
            case TapNatives.EPERM:
                return "TAP " + name + " is missing and cannot be created, or belongs to another user (EPERM): "
                        + "creating or attaching to another user's TAP needs CAP_NET_ADMIN. Run jvhost with "
                        + "CAP_NET_ADMIN, or create a persistent TAP for jvhost's user first: "
                        + "ip tuntap add dev " + name + " mode tap vnet_hdr" + mq + " user <jvhost user>";
            case TapNatives.EBUSY:
                return "TAP " + name + " is already attached to another process (EBUSY); a single-queue TAP has one reader";
            case TapNatives.EINVAL:
                return "TAP " + name + " exists with incompatible flags (EINVAL): it must be a TAP (not TUN)"
                        + (queues > 1 ? " created with multi_queue, for queues=" + queues
                        : " without multi_queue, for queues=1") + "; recreate it with: ip tuntap add dev " + name
                        + " mode tap vnet_hdr" + mq;
            default:
                return "TUNSETIFF " + name + " failed (" + TapNatives.errnoName(errno) + ")";
        }
    }

    /** Each probe is one TUNSETOFFLOAD; the kernel answers EINVAL for a flag it does not know. */
    private int probeOffloads() {
        int supported = 0;
        for (int probe : TunOffloads.PROBES) {
            try {
                TapNatives.ioctl(fds[0], TapNatives.TUNSETOFFLOAD, probe);
                supported |= probe;
            } catch (LastErrorException e) {
                // not supported by this kernel: leave those flags out
            }
        }
        return supported;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public int queueCount() {
        return fds.length;
    }

    @Override
    public int fd(int queue) {
        return fds[queue];
    }

    @Override
    public long readv(int queue, long iov, int iovcnt) {
        long n = TapNatives.readv(fds[queue], iov, iovcnt);
        return n >= 0 ? n : -TapNatives.errno();
    }

    @Override
    public long writev(int queue, long iov, int iovcnt) {
        long n = TapNatives.writev(fds[queue], iov, iovcnt);
        return n >= 0 ? n : -TapNatives.errno();
    }

    @Override
    public void writeFrames(int queue, long iov, int[] firsts, int[] counts, int frames, long[] results) {
        if (!rings.batch(true, queue, fds[queue], iov, firsts, counts, frames, results)) {
            Tap.super.writeFrames(queue, iov, firsts, counts, frames, results);
        }
    }

    @Override
    public void readFrames(int queue, long iov, int[] firsts, int[] counts, int frames, long[] results) {
        if (!rings.batch(false, queue, fds[queue], iov, firsts, counts, frames, results)) {
            Tap.super.readFrames(queue, iov, firsts, counts, frames, results);
        }
    }

    /**
     * TUNSETQUEUE: a detached queue gets no frames from the kernel, which otherwise spreads frames over
     * all queues by flow hash, including those of pairs the driver never enabled (QEMU's own TAP
     * back-end detaches disabled queues for the same reason).
     */
    @Override
    public void setQueueAttached(int queue, boolean attached) throws IOException {
        if (fds.length == 1) {
            return; // a single-queue TAP has nothing to steer
        }
        Memory ifr = new Memory(TapNatives.IFREQ_SIZE);
        ifr.clear();
        ifr.setShort(TapNatives.IFREQ_FLAGS,
                (short) (attached ? TapNatives.IFF_ATTACH_QUEUE : TapNatives.IFF_DETACH_QUEUE));
        try {
            TapNatives.ioctl(fds[queue], TapNatives.TUNSETQUEUE, ifr);
        } catch (LastErrorException e) {
            if (e.getErrorCode() == TapNatives.EINVAL) {
                return; // already in the requested state (tun.c answers EINVAL for a double attach/detach)
            }
            throw new IOException("TAP " + name + ": TUNSETQUEUE " + (attached ? "attach" : "detach") + " queue "
                    + queue + " failed (" + TapNatives.errnoName(e.getErrorCode()) + ")");
        }
    }

    @Override
    public int supportedOffloads() {
        return supportedOffloads;
    }

    /** Offloads are a property of the TAP interface, so setting them through one queue sets all. */
    @Override
    public void setOffloads(int tunFlags) throws IOException {
        try {
            TapNatives.ioctl(fds[0], TapNatives.TUNSETOFFLOAD, tunFlags);
        } catch (LastErrorException e) {
            throw new IOException("TAP " + name + ": TUNSETOFFLOAD 0x" + Integer.toHexString(tunFlags) + " failed ("
                    + TapNatives.errnoName(e.getErrorCode()) + ")");
        }
    }

    @Override
    public void setHeaderLength(int bytes) throws IOException {
        Memory size = new Memory(4);
        size.setInt(0, bytes);
        try {
            TapNatives.ioctl(fds[0], TapNatives.TUNSETVNETHDRSZ, size);
        } catch (LastErrorException e) {
            throw new IOException("TAP " + name + ": TUNSETVNETHDRSZ " + bytes + " failed ("
                    + TapNatives.errnoName(e.getErrorCode()) + ")");
        }
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            rings.close();
            closeAll(fds);
        }
    }

    /**
     * Duplicates of {@code fds} (close-on-exec), sharing their TAP queues.
     *
     * @throws IllegalStateException naming the fd the kernel would not duplicate (those made are closed)
     */
    static int[] duplicate(int[] fds) {
        int[] dups = new int[fds.length];
        Arrays.fill(dups, -1);
        for (int i = 0; i < fds.length; i++) {
            try {
                dups[i] = TapNatives.fcntl(fds[i], TapNatives.F_DUPFD_CLOEXEC, 0);
            } catch (LastErrorException e) {
                closeAll(dups);
                throw new IllegalStateException("cannot duplicate TAP fd " + fds[i] + ": "
                        + TapNatives.errnoName(e.getErrorCode()), e);
            }
        }
        return dups;
    }

    static void closeAll(int[] fds) {
        for (int fd : fds) {
            if (fd >= 0) {
                try {
                    TapNatives.close(fd);
                } catch (LastErrorException e) {
                    // nothing useful to do: the fd is gone either way
                }
            }
        }
    }

    @Override
    public String toString() {
        return "TAP " + name + " (" + fds.length + (fds.length == 1 ? " queue" : " queues")
                + (rings.any() ? ", io_uring" : ", readv/writev") + ")";
    }
}
