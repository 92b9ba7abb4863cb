package org.jvhost.device.blk;

import java.nio.file.Path;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.InvalidOptionException;

/**
 * The {@code blk} device's options, validated.
 *
 * @param path     the backing file or block device
 * @param readOnly refuse writes (VIRTIO_BLK_F_RO); the file is opened read-only
 * @param queues   request queues (more than 1: VIRTIO_BLK_F_MQ's {@code num_queues})
 * @param serial   what GET_ID answers (at most 20 ASCII bytes)
 * @param threads  I/O threads of the device's pool
 * @param uring    how reads, writes and flushes run, as the net device's option of that name: {@code on}
 *                 (io_uring, or refuse to start), {@code off} (the thread pool), or {@code auto} (io_uring,
 *                 or the pool when the kernel refuses io_uring)
 */
record BlkConfig(Path path, boolean readOnly, int queues, String serial, int threads, String uring) {
    static final String OPT_PATH = "path";
    static final String OPT_READONLY = "readonly";
    static final String OPT_QUEUES = "queues";
    static final String OPT_SERIAL = "serial";
    static final String OPT_THREADS = "io-threads";
    static final String OPT_URING = "uring";
    static final String URING_AUTO = "auto";
    static final String URING_ON = "on";
    static final String URING_OFF = "off";
    static final int MAX_QUEUES = 64;
    static final int MAX_THREADS = 64;

    static BlkConfig from(DeviceOptions o) throws InvalidOptionException {
        String serial = o.get(OPT_SERIAL).orElse("");
        if (serial.length() > 20 || !serial.chars().allMatch(c -> c >= 0x20 && c < 0x7f)) {
            throw new InvalidOptionException(OPT_SERIAL, OPT_SERIAL + "=" + serial
                    + ": at most 20 printable ASCII characters");
        }
        String uring = o.get(OPT_URING).orElse(URING_AUTO);
        if (!uring.equals(URING_AUTO) && !uring.equals(URING_ON) && !uring.equals(URING_OFF)) {
            throw new InvalidOptionException(OPT_URING, OPT_URING + "=" + uring + ": one of " + URING_AUTO + ", "
                    + URING_ON + ", " + URING_OFF);
        }
        return new BlkConfig(o.getPath(OPT_PATH), o.getBoolean(OPT_READONLY), o.getInt(OPT_QUEUES, 1, MAX_QUEUES),
                serial, o.getInt(OPT_THREADS, 1, MAX_THREADS), uring);
    }
}
