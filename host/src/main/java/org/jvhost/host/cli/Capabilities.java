package org.jvhost.host.cli;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.jvhost.host.config.DeviceSpec;
import org.jvhost.host.plugin.DeviceTypes;
import org.jvhost.host.plugin.PluginException;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.InvalidOptionException;
import org.jvhost.spi.VhostUserDevice;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code serve --print-capabilities}: the JSON the vhost-user spec's "Backend program conventions" ask
 * for, shaped by {@code VHostUserBackendCapabilities} in QEMU's docs/interop/vhost-user.json: a
 * {@code type} from {@code VHostUserBackendType}, plus {@code features} for the types whose schema has
 * them (gpu, input, block). jvhost implements none of those types' command-line features, so such a
 * list would be empty; for every other type, net included, the schema defines no field beyond
 * {@code type}.
 *
 * <p>Per the spec, other options are ignored, and nothing is created to answer: the providers say their
 * virtio device ID ({@link org.jvhost.spi.DeviceProvider#virtioDeviceId()}); only a plugin that does not
 * (older than SPI 1.3) gets a device created and closed to ask it.
 */
final class Capabilities {
    private static final Logger LOG = LoggerFactory.getLogger(Capabilities.class);
    /** Virtio device IDs (virtio 1.2 section 5) to {@code VHostUserBackendType} names. */
    private static final Map<Integer, String> TYPES = Map.ofEntries(
            Map.entry(1, "net"), Map.entry(2, "block"), Map.entry(3, "console"), Map.entry(4, "rng"),
            Map.entry(5, "balloon"), Map.entry(7, "rpmsg"), Map.entry(8, "scsi"), Map.entry(9, "9p"),
            Map.entry(11, "rproc-serial"), Map.entry(12, "caif"), Map.entry(16, "gpu"), Map.entry(18, "input"),
            Map.entry(19, "vsock"), Map.entry(20, "crypto"), Map.entry(26, "fs"));

    private Capabilities() {
    }

    /**
     * The capabilities JSON for a device with virtio device ID {@code virtioId}.
     *
     * @throws IllegalArgumentException if vhost-user.json has no backend type for it
     */
    static String json(int virtioId) {
        String type = TYPES.get(virtioId);
        if (type == null) {
            throw new IllegalArgumentException("virtio device ID " + virtioId
                    + " has no vhost-user backend type in vhost-user.json");
        }
        boolean hasFeatures = type.equals("gpu") || type.equals("input") || type.equals("block");
        return "{\"type\": \"" + type + "\"" + (hasFeatures ? ", \"features\": []" : "") + "}";
    }

    /**
     * The JSON for the type of the first of {@code devices} or, without one, for every type of
     * {@code types} (which must agree: the built-in ones are all virtio-net).
     *
     * @throws IllegalArgumentException saying why there is no answer: an unknown type, types that differ
     */
    static String of(DeviceTypes types, List<DeviceSpec> devices) {
        Map<String, String> typesByJson = new TreeMap<>();
        for (DeviceTypes.DeviceType t : devices.isEmpty() ? types.types() : List.of(types.resolve(devices.get(0).type()))) {
            typesByJson.merge(forType(t, devices), t.name(), (x, y) -> x + ", " + y);
        }
        if (typesByJson.size() != 1) {
            throw new IllegalArgumentException(typesByJson.isEmpty() ? "no device type is available"
                    : "the device types differ (" + String.join("; ", typesByJson.values()) + "): give --device TYPE");
        }
        return typesByJson.keySet().iterator().next();
    }

    private static String forType(DeviceTypes.DeviceType type, List<DeviceSpec> devices) {
        try {
            int id = type.virtioDeviceId();
            if (id < 0) {
                DeviceSpec d = devices.isEmpty() ? DeviceSpec.parse(type.name(), true) : devices.get(0);
                id = createToAsk(type, d.resolveOptions(type.options(), Path.of("").toAbsolutePath()));
            }
            return json(id);
        } catch (InvalidOptionException | PluginException | IllegalArgumentException e) {
            throw new IllegalArgumentException("device type " + type.name() + ": " + e.getMessage(), e);
        }
    }

    /** Creates a device of {@code type} to ask it its virtio device ID, then closes it. */
    private static int createToAsk(DeviceTypes.DeviceType type, DeviceOptions options) throws InvalidOptionException {
        VhostUserDevice device = type.create(options, () -> type.name() + "@capabilities");
        try {
            return device.deviceType();
        } catch (RuntimeException | Error e) { // plugin code: contained like DeviceTypes.DeviceType#create
            throw new PluginException(type.source() + ": deviceType() failed: " + e, e);
        } finally {
            try {
                device.close();
            } catch (RuntimeException | Error e) {
                LOG.warn("{}: close() failed: {}", type.source(), e.toString());
            }
        }
    }
}
