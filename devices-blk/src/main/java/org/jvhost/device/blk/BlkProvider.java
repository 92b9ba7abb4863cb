package org.jvhost.device.blk;

import java.io.IOException;
import java.util.List;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.DeviceProvider;
import org.jvhost.spi.InvalidOptionException;
import org.jvhost.spi.OptionSpec;
import org.jvhost.spi.SpiVersion;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.virtio.VirtioBlk;

/** The {@code blk} device type, registered in {@code META-INF/services/org.jvhost.spi.DeviceProvider}. */
public final class BlkProvider implements DeviceProvider {

    /** The type name in {@code --device blk:...}. */
    public static final String TYPE = "blk";

    private static final List<OptionSpec> OPTIONS = List.of(
            OptionSpec.required(BlkConfig.OPT_PATH, "the backing regular file or block device").asPath(),
            new OptionSpec(BlkConfig.OPT_READONLY, "read-only disk (VIRTIO_BLK_F_RO; on/off)", "off"),
            new OptionSpec(BlkConfig.OPT_QUEUES, "request queues, 1.." + BlkConfig.MAX_QUEUES, "1"),
            new OptionSpec(BlkConfig.OPT_SERIAL, "serial number GET_ID answers, at most 20 ASCII characters", null),
            new OptionSpec(BlkConfig.OPT_THREADS, "I/O threads of the device's pool, 1.." + BlkConfig.MAX_THREADS, "4"),
            new OptionSpec(BlkConfig.OPT_URING, "reads, writes and flushes on io_uring: auto (the I/O threads if "
                    + "the kernel refuses it), on (refuse to start without), off (always the I/O threads)",
                    BlkConfig.URING_AUTO));

    @Override
    public String type() {
        return TYPE;
    }

    @Override
    public String description() {
        return "virtio-blk disk over a regular file or block device";
    }

    @Override
    public List<OptionSpec> options() {
        return OPTIONS;
    }

    @Override
    public int virtioDeviceId() {
        return VirtioBlk.DEVICE_ID;
    }

    /** The SPI this jar was compiled against (a constant, so javac records it here), not the host's. */
    @Override
    public int spiMajorVersion() {
        return SpiVersion.MAJOR;
    }

    @Override
    public VhostUserDevice create(DeviceOptions options, DeviceContext context) throws InvalidOptionException {
        BlkConfig config = BlkConfig.from(options);
        BackingFile file;
        try {
            file = BackingFile.open(config);
        } catch (IOException e) {
            throw new InvalidOptionException(BlkConfig.OPT_PATH, BlkConfig.OPT_PATH + "=" + config.path()
                    + ": cannot open" + (config.readOnly() ? " for reading: " : " for reading and writing: ") + e);
        }
        try {
            return new BlkDevice(context, config, file);
        } catch (InvalidOptionException | RuntimeException e) {
            file.close();
            throw e;
        }
    }
}
