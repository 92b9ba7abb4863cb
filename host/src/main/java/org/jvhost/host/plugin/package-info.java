/**
 * Finding device types: on the host's class path, in the plugin jars built into jvhost.jar
 * ({@link org.jvhost.host.plugin.BuiltInPlugins}) and in a plugins directory
 * ({@link org.jvhost.host.plugin.Plugin}), each plugin in its own
 * {@link org.jvhost.host.plugin.PluginClassLoader} that shares only the SPI and slf4j with the host.
 * {@link org.jvhost.host.plugin.DeviceTypes} refuses providers built for another SPI major version,
 * refuses type names two providers claim (naming both sources) and reports a plugin that fails to load
 * by its file, without losing the others.
 */
package org.jvhost.host.plugin;
