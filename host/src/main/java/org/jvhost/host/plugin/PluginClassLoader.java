package org.jvhost.host.plugin;

import java.io.IOException;
import java.net.URL;
import java.net.URLClassLoader;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Enumeration;
import java.util.List;

/**
 * The class loader of one plugin: its own jars first, then the platform's classes, and from the host
 * only the packages the device contract names: {@code org.jvhost.spi} (the types in every plugin
 * signature, which must be the host's own {@code Class} objects) and {@code org.slf4j} (plugins log
 * through the host's slf4j-api, declared {@code provided}).
 *
 * <p>The parent is the platform loader, not the host's application loader, so a plugin never sees the
 * engine, picocli, JNA or another plugin, and two plugins may each bundle a different version of the
 * same library. (Trino's {@code PluginClassLoader} makes the same cut.)
 */
final class PluginClassLoader extends URLClassLoader {

    /** Package prefixes served by the host loader: the SPI and the logging API it tells plugins to use. */
    static final List<String> SHARED_PACKAGES = List.of("org.jvhost.spi.", "org.slf4j.");

    static {
        registerAsParallelCapable();
    }

    private final ClassLoader host;

    PluginClassLoader(String name, URL[] jars, ClassLoader host) {
        super(name, jars, ClassLoader.getPlatformClassLoader());
        this.host = host;
    }

    @Override
    protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
        if (isShared(name)) {
            return host.loadClass(name);
        }
        if (name.startsWith("java.")) {
            // No loader but the boot loader may define java.*; skip the pointless jar lookup.
            return getParent().loadClass(name);
        }
        synchronized (getClassLoadingLock(name)) {
            Class<?> c = findLoadedClass(name);
            if (c == null) {
                try {
                    c = findClass(name);
                } catch (ClassNotFoundException notInPlugin) {
                    c = getParent().loadClass(name);
                }
            }
            if (resolve) {
                resolveClass(c);
            }
            return c;
        }
    }

    @Override
    public URL getResource(String name) {
        if (isShared(name.replace('/', '.'))) {
            return host.getResource(name);
        }
        URL own = findResource(name);
        return own != null ? own : getParent().getResource(name);
    }

    /**
     * The plugin's own resources, then the platform's; never the host's. This is what keeps
     * {@link java.util.ServiceLoader} from finding the host's (or another plugin's) providers again.
     */
    @Override
    public Enumeration<URL> getResources(String name) throws IOException {
        if (isShared(name.replace('/', '.'))) {
            return host.getResources(name);
        }
        List<URL> all = new ArrayList<>(Collections.list(findResources(name)));
        all.addAll(Collections.list(getParent().getResources(name)));
        return Collections.enumeration(all);
    }

    static boolean isShared(String className) {
        for (String prefix : SHARED_PACKAGES) {
            if (className.startsWith(prefix)) {
                return true;
            }
        }
        return false;
    }
}
