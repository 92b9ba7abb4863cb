package org.jvhost.device.net;

import java.io.IOException;
import java.util.List;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.DeviceState;
import org.jvhost.spi.DeviceProvider;
import org.jvhost.spi.InvalidOptionException;
import org.jvhost.spi.OptionSpec;
import org.jvhost.spi.SpiVersion;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.virtio.VirtioNet;

/** The {@code net} device type, registered in {@code META-INF/services/org.jvhost.spi.DeviceProvider}. */
public final class NetProvider implements DeviceProvider {

    /** The type name in {@code --device net:...}. */
    public static final String TYPE = "net";

    private static final List<OptionSpec> OPTIONS = List.of(
            new OptionSpec(NetConfig.OPT_TAP, "TAP interface to attach to, created if missing (needs CAP_NET_ADMIN "
                    + "unless it is a persistent TAP owned by jvhost's user)", null),
            new OptionSpec(NetConfig.OPT_TAPFD, "inherited TAP file descriptors instead of tap=, one per queue pair, "
                    + "colon-separated (opened with IFF_TAP|IFF_NO_PI|IFF_VNET_HDR)", null),
            new OptionSpec(NetConfig.OPT_MAC, "MAC address reported in config space (VIRTIO_NET_F_MAC); "
                    + "unset: the front-end's", null),
            new OptionSpec(NetConfig.OPT_MTU, "MTU reported in config space (VIRTIO_NET_F_MTU), "
                    + NetConfig.MIN_MTU + ".." + NetConfig.MAX_MTU + "; set the TAP's MTU to match", null),
            new OptionSpec(NetConfig.OPT_QUEUES, "RX/TX queue pairs, 1.." + NetConfig.MAX_QUEUE_PAIRS
                    + " (more than 1: VIRTIO_NET_F_MQ and a multi-queue TAP)", "1"),
            new OptionSpec(NetConfig.OPT_URING, "TX writes and RX reads of the TAP through io_uring, one system "
                    + "call per batch of up to " + PairDataPath.TX_BATCH + " frames: auto (if the kernel allows "
                    + "io_uring, else one writev or readv per frame), on (refuse to start without it), off", "auto"));

    @Override
    public String type() {
        return TYPE;
    }

    @Override
    public String description() {
        return "virtio-net device on a Linux TAP (multi-queue, mergeable buffers, checksum/TSO offloads)";
    }

    @Override
    public List<OptionSpec> options() {
        return OPTIONS;
    }

    @Override
    public int virtioDeviceId() {
        return VirtioNet.DEVICE_ID;
    }

    /** The SPI this jar was compiled against (a constant, so javac records it here), not the host's. */
    @Override
    public int spiMajorVersion() {
        return SpiVersion.MAJOR;
    }

    /**
     * Opens the TAP now, so a missing permission or a wrong fd stops jvhost at start-up with the reason. At
     * a hot upgrade the TAP comes from the previous process instead ({@link NetState}): the same queues,
     * never re-opened.
     */
    @Override
    public VhostUserDevice create(DeviceOptions options, DeviceContext context) throws InvalidOptionException {
        NetConfig config = NetConfig.from(options);
        DeviceState handed = context.handedOverState();
        if (handed != null) {
            return new NetDevice(context.deviceName(), config, takeOver(handed, config), context, true);
        }
        Tap tap;
        try {
            tap = config.tapName() != null
                    ? LinuxTap.open(config.tapName(), config.queuePairs(), config.uring())
                    : LinuxTap.adopt(config.tapFds(), config.uring());
        } catch (IOException e) {
            throw new InvalidOptionException(config.tapName() != null ? NetConfig.OPT_TAP : NetConfig.OPT_TAPFD,
                    e.getMessage());
        }
        return new NetDevice(context.deviceName(), config, tap, context);
    }

    /**
     * The TAP the previous process handed over, on duplicates of its fds (the host owns the state's own
     * until {@link NetDevice#restoreState}). It must be the configured one: {@code tap=} names it, or
     * {@code tapfd=} (whose numbers belonged to the previous process) gives as many queues.
     */
    private static Tap takeOver(DeviceState handed, NetConfig config) throws InvalidOptionException {
        String option = config.tapName() != null ? NetConfig.OPT_TAP : NetConfig.OPT_TAPFD;
        NetState s;
        try {
            s = NetState.read(handed);
        } catch (IllegalArgumentException e) {
            throw new InvalidOptionException(option, "the previous jvhost's " + e.getMessage());
        }
        if (config.tapName() != null && !config.tapName().equals(s.tapName()) || s.pairs() != config.queuePairs()) {
            throw new InvalidOptionException(option, "the previous jvhost hands over TAP " + s.tapName() + " with "
                    + s.pairs() + " queue pair(s), but this device is configured with " + config
                    + ": a hot upgrade keeps the TAP (change it with a restart)");
        }
        int[] fds;
        try {
            fds = LinuxTap.duplicate(handed.fds());
        } catch (IllegalStateException e) {
            throw new InvalidOptionException(option, "the TAP the previous jvhost handed over: " + e.getMessage());
        }
        try {
            return LinuxTap.handedOver(fds, s.offloads(), config.uring());
        } catch (IOException | RuntimeException e) {
            LinuxTap.closeAll(fds);
            throw new InvalidOptionException(option, "the TAP the previous jvhost handed over: " + e.getMessage());
        }
    }
}
