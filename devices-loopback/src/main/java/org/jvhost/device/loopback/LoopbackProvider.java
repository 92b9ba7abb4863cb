package org.jvhost.device.loopback;

import java.util.List;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.DeviceProvider;
import org.jvhost.spi.InvalidOptionException;
import org.jvhost.spi.OptionSpec;
import org.jvhost.spi.SpiVersion;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.virtio.VirtioNet;

/** The {@code loopback} device type, registered in {@code META-INF/services/org.jvhost.spi.DeviceProvider}. */
public final class LoopbackProvider implements DeviceProvider {

    /** The type name in {@code --device loopback:...}. */
    public static final String TYPE = "loopback";

    private static final List<OptionSpec> OPTIONS = List.of(
            new OptionSpec(LoopbackConfig.OPT_MAC, "MAC address reported in config space",
                    LoopbackConfig.DEFAULT_MAC),
            new OptionSpec(LoopbackConfig.OPT_QUEUES,
                    "RX/TX queue pairs, 1.." + LoopbackConfig.MAX_QUEUE_PAIRS + " (more than 1 offers VIRTIO_NET_F_MQ)",
                    "1"),
            new OptionSpec(LoopbackConfig.OPT_MRG_RXBUF,
                    "offer VIRTIO_NET_F_MRG_RXBUF, letting one frame span several RX buffers (on/off)", "on"));

    @Override
    public String type() {
        return TYPE;
    }

    @Override
    public String description() {
        return "virtio-net device that sends every transmitted frame back to the same queue pair, MACs swapped";
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

    @Override
    public VhostUserDevice create(DeviceOptions options, DeviceContext context) throws InvalidOptionException {
        return new LoopbackDevice(context.deviceName(), LoopbackConfig.from(options));
    }
}
