package org.jvhost.spi;

import java.util.Arrays;
import java.util.Objects;

/**
 * A device's state, saved by one jvhost process and restored by the next one across a hot upgrade
 * ({@link VhostUserDevice#saveState()}, {@link VhostUserDevice#restoreState}). The host carries it
 * opaquely: {@code format} names the layout of {@code data} and {@code version} its revision, so a newer
 * plugin can read what an older one wrote (and refuse what it cannot). {@code fds} are file descriptors
 * the device passes on with it, such as a network card's TAP queues: the host sends them to the next
 * process, where the restored device owns (and closes) them; the saving device keeps its own.
 *
 * @since SPI 1.4
 */
public final class DeviceState {
    /** The most fds one state may carry. */
    public static final int MAX_FDS = 8;
    /** The most bytes of {@code data}. */
    public static final int MAX_DATA = 512 * 1024;

    private final String format;
    private final int version;
    private final byte[] data;
    private final int[] fds;

    /**
     * @throws IllegalArgumentException if {@code format} is blank, or there are more than {@link #MAX_FDS}
     *                                  fds or {@link #MAX_DATA} bytes
     */
    public DeviceState(String format, int version, byte[] data, int... fds) {
        if (Objects.requireNonNull(format, "format").isBlank()) {
            throw new IllegalArgumentException("a device state needs a format name");
        }
        if (fds.length > MAX_FDS || data.length > MAX_DATA) {
            throw new IllegalArgumentException("device state " + format + ": " + fds.length + " fds, "
                    + data.length + " bytes (at most " + MAX_FDS + " and " + MAX_DATA + ")");
        }
        this.format = format;
        this.version = version;
        this.data = data.clone();
        this.fds = fds.clone();
    }

    /** What {@link #data()} holds, e.g. {@code "org.jvhost.loopback"}. */
    public String format() {
        return format;
    }

    /** The revision of {@link #format()} the saving plugin wrote. */
    public int version() {
        return version;
    }

    public byte[] data() {
        return data.clone();
    }

    /** The file descriptors passed on with the state. */
    public int[] fds() {
        return fds.clone();
    }

    @Override
    public String toString() {
        return format + " v" + version + " (" + data.length + " bytes, fds " + Arrays.toString(fds) + ")";
    }
}
