package org.jvhost.host.devices;

import java.io.IOException;
import java.nio.file.FileSystems;
import java.nio.file.Path;
import java.nio.file.attribute.UserPrincipalNotFoundException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.jvhost.engine.server.Host;
import org.jvhost.host.config.ConfigFile;
import org.jvhost.host.config.DeviceEntry;
import org.jvhost.host.config.DeviceSpec;
import org.jvhost.host.config.InstrumentOptions;
import org.jvhost.host.plugin.DeviceTypes;
import org.jvhost.host.plugin.DeviceTypes.DeviceType;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.OptionSpec;

/**
 * A device that passed the checks of a change to the device set that need no device instance: its
 * type exists, its option keys are the type's, and its name and socket path are its own. The values
 * are judged later, by the provider's {@code create} ({@link DeviceManager}).
 *
 * @param entry   the device as declared
 * @param type    its device type
 * @param options its options, with the type's defaults filled in
 */
public record PlannedDevice(DeviceEntry entry, DeviceType type, DeviceOptions options) {

    /**
     * The entries that pass the checks, and the problems of the others: problems found earlier (a config
     * file's syntax), then those of the devices, so that one pass reports them all.
     *
     * @param devices  the entries without problems so far, to be created (their values judged)
     * @param problems every problem; the plan may be applied only if there is none after creation too
     */
    public record Plan(List<PlannedDevice> devices, List<String> problems) {
        public Plan {
            devices = List.copyOf(devices);
            problems = List.copyOf(problems);
        }
    }

    /**
     * Checks what needs no device instance: each entry's type and option keys, and that no two devices
     * (among {@code entries} and {@code kept}) share a name or a socket path.
     *
     * @param earlier problems found before, listed first
     */
    public static Plan plan(List<DeviceEntry> entries, List<DeviceEntry> kept, DeviceTypes types, List<String> earlier) {
        List<String> problems = new ArrayList<>(earlier);
        Map<String, DeviceEntry> names = new HashMap<>();
        Map<Path, DeviceEntry> sockets = new HashMap<>();
        for (DeviceEntry k : kept) {
            names.put(k.name(), k);
            sockets.put(k.socketKey(), k);
        }
        List<PlannedDevice> plan = new ArrayList<>();
        for (DeviceEntry e : entries) {
            DeviceEntry sameName = names.putIfAbsent(e.name(), e);
            if (sameName != null) {
                problems.add(e.problem(null, "the name " + e.name() + " is already used by " + describe(sameName)));
            }
            DeviceEntry sameSocket = sockets.putIfAbsent(e.socketKey(), e);
            if (sameSocket != null) {
                String key = e.spec().mode() == Host.Mode.LISTEN
                        ? DeviceSpec.KEY_SOCKET : DeviceSpec.KEY_CONNECT;
                problems.add(e.problem(key, "socket " + e.spec().socket() + " is already used by "
                        + describe(sameSocket)));
            }
            PlannedDevice p = plan(e, types, problems);
            if (p != null) {
                plan.add(p);
            }
        }
        return new Plan(plan, problems);
    }

    private static String describe(DeviceEntry e) {
        return e.origin() == DeviceEntry.Origin.COMMAND_LINE ? "'" + e.spec().text() + "'"
                : "device " + e.name() + " (" + e.origin().label + ")";
    }

    private static PlannedDevice plan(DeviceEntry e, DeviceTypes types, List<String> problems) {
        DeviceType type;
        try {
            type = types.resolve(e.spec().type());
        } catch (IllegalArgumentException ex) {
            problems.add(e.problem(ConfigFile.KEY_TYPE, ex.getMessage()));
            return null;
        }
        try {
            e.spec().socketAccess(Set.of()); // socket-mode, socket-group, allow-uid: the host's own keys
            InstrumentOptions.of(e.spec()); // trace, strict and the fault keys: also the host's
        } catch (IllegalArgumentException ex) {
            problems.add(e.problem(null, ex.getMessage()));
            return null;
        }
        String group = e.spec().options().get(DeviceSpec.KEY_SOCKET_GROUP);
        if (group != null && !groupExists(group)) {
            problems.add(e.problem(DeviceSpec.KEY_SOCKET_GROUP, "no group named '" + group + "' on this system: "
                    + "create it (groupadd " + group + ") or name an existing group, such as the one QEMU runs in"));
            return null;
        }
        if (e.origin() == DeviceEntry.Origin.CONFIG) {
            // one problem per unknown key, each with its own line; DeviceSpec reports only the first
            boolean unknown = false;
            for (Map.Entry<String, String> o : e.spec().options().entrySet()) {
                if (DeviceSpec.HOST_KEYS.contains(o.getKey())) {
                    continue;
                }
                if (type.options().stream().noneMatch(s -> s.name().equals(o.getKey()))) {
                    problems.add(e.problem(o.getKey(), "device type " + e.spec().type() + " has no option '"
                            + o.getKey() + "'; it accepts: " + acceptedKeys(type)));
                    unknown = true;
                }
            }
            if (unknown) {
                return null;
            }
        }
        try {
            return new PlannedDevice(e, type, e.spec().resolveOptions(type.options(), e.baseDir()));
        } catch (IllegalArgumentException ex) {
            problems.add(ex.getMessage());
            return null;
        }
    }

    /** Whether the system knows {@code group}; true when it cannot tell (creating the socket then says why). */
    private static boolean groupExists(String group) {
        try {
            FileSystems.getDefault().getUserPrincipalLookupService().lookupPrincipalByGroupName(group);
            return true;
        } catch (UserPrincipalNotFoundException ex) {
            return false;
        } catch (IOException | UnsupportedOperationException ex) {
            return true;
        }
    }

    private static String acceptedKeys(DeviceType type) {
        List<String> keys = new ArrayList<>(List.of(ConfigFile.KEY_TYPE, DeviceSpec.KEY_SOCKET, DeviceSpec.KEY_CONNECT,
                DeviceSpec.KEY_SOCKET_MODE, DeviceSpec.KEY_SOCKET_GROUP, DeviceSpec.KEY_ALLOW_UID));
        keys.addAll(InstrumentOptions.KEYS);
        type.options().stream().map(OptionSpec::name).forEach(keys::add);
        return String.join(", ", keys);
    }
}
