package org.jvhost.host.plugin;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.TreeMap;
import java.util.regex.Pattern;
import org.jvhost.spi.DeviceProvider;
import org.jvhost.spi.SpiVersion;

/**
 * The device types this host can serve, found with {@link ServiceLoader}. Loading never fails as a
 * whole: a provider that cannot be loaded, is built for another SPI major version, has an unusable type
 * name, or claims a type another provider also claims is left out and described in {@link #problems()}.
 * A type claimed twice is refused for both providers, since picking one would depend on class-path order.
 */
public final class DeviceTypes {

    /** Type names users can type without quoting: {@code --device TYPE:...}. */
    private static final Pattern TYPE_NAME = Pattern.compile("[a-z][a-z0-9_-]*");

    /**
     * ServiceLoader's iterator recovers from a broken entry only on a "best effort" basis; stop after
     * this many consecutive errors rather than loop on one that keeps failing.
     */
    private static final int MAX_LOAD_ERRORS = 64;

    private final Map<String, DeviceProvider> byType = new TreeMap<>();
    private final Map<String, List<String>> ambiguous = new TreeMap<>();
    private final List<String> problems = new ArrayList<>();

    private DeviceTypes() {
    }

    /** Providers visible to {@code loader} through {@code META-INF/services/org.jvhost.spi.DeviceProvider}. */
    public static DeviceTypes load(ClassLoader loader) {
        return from(ServiceLoader.load(DeviceProvider.class, loader).iterator());
    }

    /**
     * Providers from any iterator shaped like ServiceLoader's: {@code hasNext} and {@code next} may throw
     * {@link ServiceConfigurationError} for one provider and go on with the next.
     */
    public static DeviceTypes from(Iterator<DeviceProvider> providers) {
        DeviceTypes types = new DeviceTypes();
        int errors = 0;
        while (errors < MAX_LOAD_ERRORS) {
            try {
                if (!providers.hasNext()) {
                    break;
                }
                types.addChecked(providers.next());
            } catch (ServiceConfigurationError | RuntimeException | LinkageError e) {
                errors++;
                types.problems.add("a device provider failed to load: " + describe(e));
            }
        }
        types.byType.keySet().removeAll(types.ambiguous.keySet());
        return types;
    }

    /** Adds one provider; one whose own methods throw is reported by class name and left out. */
    private void addChecked(DeviceProvider provider) {
        try {
            add(provider);
        } catch (RuntimeException | LinkageError e) {
            problems.add("refused " + provider.getClass().getName() + ": " + e);
        }
    }

    private void add(DeviceProvider provider) {
        String className = provider.getClass().getName();
        int major = provider.spiMajorVersion();
        if (major != SpiVersion.MAJOR) {
            problems.add("refused " + className + ": built for SPI " + major + ".x, this host implements SPI "
                    + SpiVersion.string());
            return;
        }
        String type = provider.type();
        if (type == null || !TYPE_NAME.matcher(type).matches()) {
            problems.add("refused " + className + ": type name '" + type
                    + "' must be lower case letters, digits, '-' or '_', starting with a letter");
            return;
        }
        DeviceProvider earlier = byType.putIfAbsent(type, provider);
        if (earlier != null) {
            List<String> claimants = ambiguous.computeIfAbsent(type, t -> new ArrayList<>(List.of(earlier.getClass().getName())));
            claimants.add(className);
            problems.add("refused device type '" + type + "': provided by both " + String.join(" and ", claimants));
        }
    }

    private static String describe(Throwable e) {
        StringBuilder s = new StringBuilder(String.valueOf(e.getMessage()));
        for (Throwable cause = e.getCause(); cause != null; cause = cause.getCause()) {
            s.append(": ").append(cause);
        }
        return s.toString();
    }

    /** The usable providers, ordered by type name. */
    public Collection<DeviceProvider> all() {
        return Collections.unmodifiableCollection(byType.values());
    }

    /** The usable type names, sorted. */
    public List<String> names() {
        return List.copyOf(byType.keySet());
    }

    /**
     * The provider of {@code type}.
     *
     * @throws IllegalArgumentException naming the known types if none provides {@code type}, or both
     *                                  classes if two claim it
     */
    public DeviceProvider resolve(String type) {
        DeviceProvider provider = byType.get(type);
        if (provider != null) {
            return provider;
        }
        List<String> claimants = ambiguous.get(type);
        if (claimants != null) {
            throw new IllegalArgumentException("device type '" + type + "' is provided by both "
                    + String.join(" and ", claimants) + "; remove one of them from the class path");
        }
        throw new IllegalArgumentException("unknown device type '" + type + "'; known types: "
                + (byType.isEmpty() ? "(none)" : String.join(", ", byType.keySet())));
    }

    /** What went wrong while loading, one sentence each; empty if nothing did. */
    public List<String> problems() {
        return List.copyOf(problems);
    }
}
