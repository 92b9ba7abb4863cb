package org.jvhost.host.config;

import java.nio.file.Path;

/**
 * One device the host is asked to serve: its name, its spec and where it was declared, which is what
 * error messages point at.
 *
 * @param name   unique in the host: a config file's section name, or {@code TYPE@PATH}
 * @param spec   type, socket, mode and the device's own options
 * @param origin who asked for it
 * @param where  how messages name the device or one of its keys
 * @param baseDir what its relative path options resolve against (a config file's directory, the
 *                working directory); null for the control API, which refuses relative paths
 */
public record DeviceEntry(String name, DeviceSpec spec, Origin origin, Where where, Path baseDir) {

    /** Who declared a device. A reload manages the {@link #CONFIG} ones only. */
    public enum Origin {
        COMMAND_LINE("command line"), CONFIG("config file"), CONTROL("control API");

        public final String label;

        Origin(String label) {
            this.label = label;
        }
    }

    /** Names the device, or one of its keys, for an error message. */
    @FunctionalInterface
    interface Where {
        /** @param key the offending key, or null for the device as a whole */
        public String of(String key);
    }

    /** A {@code --device} argument, or the same grammar sent to the control API's {@code add}. */
    public static DeviceEntry of(DeviceSpec spec, Origin origin) {
        String name = spec.deviceName();
        return new DeviceEntry(name, spec, origin, key -> "'" + spec.text() + "': device " + name,
                origin == Origin.CONTROL ? null : Path.of("").toAbsolutePath());
    }

    /** The socket path as compared between devices; null for the device on an inherited socket (--fd). */
    public Path socketKey() {
        return spec.socket() == null ? null : spec.socket().toAbsolutePath().normalize();
    }

    /** Same type, socket, mode and options: a reload leaves the running device alone. */
    public boolean sameDevice(DeviceEntry other) {
        return spec.type().equals(other.spec.type()) && java.util.Objects.equals(socketKey(), other.socketKey())
                && spec.mode() == other.spec.mode() && spec.options().equals(other.spec.options());
    }

    /** A message about {@code key} (null: the device) of this device. */
    public String problem(String key, String message) {
        return where.of(key) + ": " + message;
    }
}
