package org.jvhost.host.plugin;

/**
 * Plugin code failed: it threw (anything, {@link Error}s included) or broke its contract (returned
 * null). The message starts with the provider class and the plugin's file, then says what failed and
 * why, for example {@code com.example.Foo from /opt/jvhost/plugins/foo.jar: create() failed:
 * java.lang.AssertionError: ...}.
 */
public final class PluginException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public PluginException(String message) {
        super(message);
    }

    public PluginException(String message, Throwable cause) {
        super(message, cause);
    }
}
