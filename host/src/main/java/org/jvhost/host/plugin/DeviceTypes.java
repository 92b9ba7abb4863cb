package org.jvhost.host.plugin;

import java.io.IOException;
import java.net.MalformedURLException;
import java.net.URL;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.TreeMap;
import java.util.jar.JarFile;
import java.util.regex.Pattern;
import org.jvhost.engine.device.DeviceRuntime;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.DeviceOptions;
import org.jvhost.spi.DeviceProvider;
import org.jvhost.spi.InvalidOptionException;
import org.jvhost.spi.OptionSpec;
import org.jvhost.spi.SpiVersion;
import org.jvhost.spi.VhostUserDevice;

/**
 * The device types this host can serve, each with where it came from: the host's class path
 * ({@value #BUILT_IN}) or a {@link Plugin} loaded in its own {@link PluginClassLoader}. Loading never
 * fails as a whole: a provider that cannot be loaded, is built for another SPI major version, has an
 * unusable type name or throws from its describing methods, or a plugin that is no jar or holds no
 * provider, is left out and described in {@link #problems()}, each sentence starting with the origin
 * (the plugin's file). A type claimed twice is refused for both providers, naming both sources, since
 * picking one would depend on file or class-path order.
 *
 * <p>Plugin code is called here once, to describe the type ({@code type()}, {@code description()},
 * {@code options()}, kept in the {@link DeviceType}), and afterwards only through
 * {@link DeviceType#create}. Whatever it throws there, {@link Error}s included (an
 * {@code AssertionError}, a {@code StackOverflowError}), is the plugin's failure and is reported naming
 * the provider class and the plugin's file: a broken plugin must not take down the host or the other
 * plugins.
 */
public final class DeviceTypes {

    /** The origin of providers on the host's own class path. */
    public static final String BUILT_IN = "built-in";

    /** The origin's version when the provider's jar manifest has no {@code Implementation-Version}. */
    public static final String UNKNOWN_VERSION = "unknown";

    /** Type names users can type without quoting: {@code --device TYPE:...}. */
    private static final Pattern TYPE_NAME = Pattern.compile("[a-z][a-z0-9_-]*");

    /**
     * ServiceLoader's iterator recovers from a broken entry only on a "best effort" basis; stop after
     * this many errors (or at the first error that repeats the previous one) rather than loop on one
     * that keeps failing.
     */
    private static final int MAX_LOAD_ERRORS = 64;

    /**
     * One usable device type, as its provider described itself when it was loaded.
     *
     * @param provider    creates the devices (through {@link #create})
     * @param origin      {@value #BUILT_IN}, {@code built-in (jvhost.jar!/...)} or the plugin's path
     * @param version     the {@code Implementation-Version} of the provider's jar, or {@value #UNKNOWN_VERSION}
     * @param name        {@link DeviceProvider#type()}
     * @param description {@link DeviceProvider#description()}
     * @param options     {@link DeviceProvider#options()}
     */
    public record DeviceType(DeviceProvider provider, String origin, String version, String name, String description,
            List<OptionSpec> options) {

        public DeviceType {
            options = List.copyOf(options);
        }

        /** How messages name it: provider class and origin. */
        public String source() {
            return provider.getClass().getName() + " from " + origin;
        }

        /**
         * The provider's {@link DeviceProvider#virtioDeviceId}, contained: -1 if it does not say.
         *
         * @throws PluginException if it threw
         */
        public int virtioDeviceId() {
            try {
                return provider.virtioDeviceId();
            } catch (Throwable e) { // Errors too: see the class comment
                throw new PluginException(source() + ": virtioDeviceId() failed: " + e, e);
            }
        }

        /**
         * The provider's {@link DeviceProvider#create}, contained.
         *
         * @throws InvalidOptionException as the provider threw it: a value it refuses
         * @throws PluginException        if it threw anything else, {@link Error}s included, or returned null
         */
        public VhostUserDevice create(DeviceOptions options, DeviceContext context) throws InvalidOptionException {
            VhostUserDevice device;
            try {
                device = provider.create(options, context);
            } catch (InvalidOptionException e) {
                throw e;
            } catch (Throwable e) { // Errors too: see the class comment
                throw new PluginException(source() + ": create() failed: " + e, e);
            }
            if (device == null) {
                throw new PluginException(source() + ": create() returned null instead of a device");
            }
            String refused;
            try {
                refused = DeviceRuntime.refusedFeatures(device);
            } catch (Throwable e) { // Errors too: see the class comment
                refused = "features() failed: " + e;
            }
            if (refused != null) {
                closeQuietly(device);
                throw new PluginException(source() + ": " + refused);
            }
            return device;
        }
    }

    /** Closes a device refused after {@link DeviceProvider#create}; its failure to close is no news. */
    private static void closeQuietly(VhostUserDevice device) {
        try {
            device.close();
        } catch (Throwable e) { // Errors too: see the class comment
            // the refusal is what the user needs to read
        }
    }

    private final Map<String, DeviceType> byType = new TreeMap<>();
    private final Map<String, List<DeviceType>> ambiguous = new TreeMap<>();
    private final List<String> problems = new ArrayList<>();

    private DeviceTypes() {
    }

    /** Providers visible to {@code loader} through {@code META-INF/services/org.jvhost.spi.DeviceProvider}. */
    public static DeviceTypes load(ClassLoader loader) {
        return builder().addBuiltIns(loader).build();
    }

    /**
     * Built-in providers from any iterator shaped like ServiceLoader's: {@code hasNext} and {@code next}
     * may throw {@link ServiceConfigurationError} for one provider and go on with the next.
     */
    public static DeviceTypes from(Iterator<DeviceProvider> providers) {
        Builder builder = builder();
        builder.add(BUILT_IN, providers);
        return builder.build();
    }

    /** Collects types from several sources; a collision is judged over all of them. */
    public static Builder builder() {
        return new Builder();
    }

    /** Gathers providers from the class path and from plugins, then {@linkplain #build() settles} collisions. */
    public static final class Builder {
        private final DeviceTypes types = new DeviceTypes();

        private Builder() {
        }

        /** The providers on {@code loader}'s class path, as {@value #BUILT_IN}. */
        public Builder addBuiltIns(ClassLoader loader) {
            add(BUILT_IN, ServiceLoader.load(DeviceProvider.class, loader).iterator());
            return this;
        }

        /**
         * The providers of {@code plugin}, loaded in a new {@link PluginClassLoader} that sees only the
         * plugin's jars, the platform and {@code host}'s SPI and slf4j packages.
         */
        public Builder addPlugin(Plugin plugin, ClassLoader host) {
            URL[] urls = new URL[plugin.jars().size()];
            for (int i = 0; i < urls.length; i++) {
                Path jar = plugin.jars().get(i);
                String unreadable = checkJar(jar);
                if (unreadable != null) {
                    types.problems.add(plugin.origin() + ": " + unreadable + "; plugin skipped");
                    return this;
                }
                try {
                    urls[i] = jar.toUri().toURL();
                } catch (MalformedURLException e) {
                    throw new IllegalStateException("a file path is always a URL: " + jar, e);
                }
            }
            PluginClassLoader loader = new PluginClassLoader("plugin " + plugin.origin(), urls, host);
            int seen = add(plugin.origin(), ServiceLoader.load(DeviceProvider.class, loader).iterator());
            if (seen == 0) {
                types.problems.add(plugin.origin() + ": no device provider: the plugin lists none in "
                        + "META-INF/services/" + DeviceProvider.class.getName());
            }
            return this;
        }

        /** A problem found outside this class (an unreadable plugins directory...), as one sentence. */
        public Builder problem(String message) {
            types.problems.add(Objects.requireNonNull(message));
            return this;
        }

        /**
         * Adds every provider {@code providers} yields, as coming from {@code origin}.
         *
         * @return how many entries it yielded, usable or not
         */
        int add(String origin, Iterator<DeviceProvider> providers) {
            int seen = 0;
            int errors = 0;
            String lastError = null;
            while (errors < MAX_LOAD_ERRORS) {
                try {
                    if (!providers.hasNext()) {
                        break;
                    }
                    DeviceProvider provider = providers.next();
                    seen++;
                    types.addChecked(provider, origin);
                } catch (Throwable e) { // a provider's static initializer or constructor: any Error is its own
                    seen++;
                    errors++;
                    String error = describe(e);
                    if (error.equals(lastError)) {
                        break; // the iterator is not moving past this entry
                    }
                    lastError = error;
                    types.problems.add(origin + ": a device provider failed to load: " + error);
                }
            }
            return seen;
        }

        /** The types: any type claimed more than once is removed and stays an error on {@code resolve}. */
        public DeviceTypes build() {
            types.byType.keySet().removeAll(types.ambiguous.keySet());
            return types;
        }
    }

    /** Null if {@code jar} opens as a jar file, else what is wrong with it. */
    private static String checkJar(Path jar) {
        try (JarFile ignored = new JarFile(jar.toFile())) {
            return null;
        } catch (IOException | SecurityException e) {
            return "cannot open " + jar.getFileName() + " as a jar: " + e.getMessage();
        }
    }

    /**
     * Adds one provider; one whose own methods throw (anything, {@link Error}s included) is reported by
     * origin and class name and left out.
     */
    private void addChecked(DeviceProvider provider, String origin) {
        try {
            add(provider, origin);
        } catch (Throwable e) { // Errors too: see the class comment
            problems.add(origin + ": refused " + provider.getClass().getName() + ": " + e);
        }
    }

    private void add(DeviceProvider provider, String origin) {
        String className = provider.getClass().getName();
        int major = provider.spiMajorVersion();
        if (major != SpiVersion.MAJOR) {
            problems.add(origin + ": refused " + className + ": it needs device SPI " + major
                    + ".x, this host has SPI " + SpiVersion.string());
            return;
        }
        String type = provider.type();
        if (type == null || !TYPE_NAME.matcher(type).matches()) {
            problems.add(origin + ": refused " + className + ": type name '" + type
                    + "' must be lower case letters, digits, '-' or '_', starting with a letter");
            return;
        }
        // Called once here: a provider that throws from them is refused now, not while listing or creating.
        String description = Objects.requireNonNull(provider.description(), "description() returned null");
        List<OptionSpec> options = List.copyOf(Objects.requireNonNull(provider.options(), "options() returned null"));
        DeviceType entry = new DeviceType(provider, origin, versionOf(provider), type, description, options);
        DeviceType earlier = byType.putIfAbsent(type, entry);
        if (earlier != null) {
            List<DeviceType> claimants = ambiguous.computeIfAbsent(type, t -> new ArrayList<>(List.of(earlier)));
            claimants.add(entry);
            problems.add("refused device type '" + type + "': provided by both " + sources(claimants));
        }
    }

    /** The {@code Implementation-Version} of the manifest of the jar that defined the provider's package. */
    private static String versionOf(DeviceProvider provider) {
        Package pkg = provider.getClass().getPackage();
        String version = pkg == null ? null : pkg.getImplementationVersion();
        return version == null ? UNKNOWN_VERSION : version;
    }

    private static String sources(List<DeviceType> claimants) {
        List<String> names = new ArrayList<>();
        claimants.forEach(c -> names.add(c.source()));
        return String.join(" and ", names);
    }

    private static String describe(Throwable e) {
        StringBuilder s = new StringBuilder(e.getMessage() != null ? e.getMessage() : e.toString());
        for (Throwable cause = e.getCause(); cause != null; cause = cause.getCause()) {
            s.append(": ").append(cause);
        }
        return s.toString();
    }

    /** The usable types, ordered by type name. */
    public Collection<DeviceType> types() {
        return Collections.unmodifiableCollection(byType.values());
    }

    /** The usable type names, sorted. */
    public List<String> names() {
        return List.copyOf(byType.keySet());
    }

    /**
     * The device type named {@code type}.
     *
     * @throws IllegalArgumentException naming the known types if none provides {@code type}, or both
     *                                  sources if two claim it
     */
    public DeviceType resolve(String type) {
        DeviceType found = byType.get(type);
        if (found != null) {
            return found;
        }
        List<DeviceType> claimants = ambiguous.get(type);
        if (claimants != null) {
            throw new IllegalArgumentException("device type '" + type + "' is provided by both "
                    + sources(claimants) + "; remove one of them");
        }
        throw new IllegalArgumentException("unknown device type '" + type + "'; known types: "
                + (byType.isEmpty() ? "(none)" : String.join(", ", byType.keySet())));
    }

    /** What went wrong while loading, one sentence each, starting with the origin; empty if nothing did. */
    public List<String> problems() {
        return List.copyOf(problems);
    }
}
