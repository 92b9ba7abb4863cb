package org.jvhost.host.cli;

import java.util.Map;

/**
 * {@code serve --print-capabilities}: the JSON the vhost-user spec's "Backend program conventions" ask
 * for, shaped by {@code VHostUserBackendCapabilities} in QEMU's docs/interop/vhost-user.json: a
 * {@code type} from {@code VHostUserBackendType}, plus {@code features} for the types whose schema has
 * them (gpu, input, block). jvhost implements none of those types' command-line features, so such a
 * list would be empty; for every other type, net included, the schema defines no field beyond
 * {@code type}.
 */
final class Capabilities {
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
}
