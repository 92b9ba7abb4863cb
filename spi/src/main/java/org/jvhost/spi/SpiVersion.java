package org.jvhost.spi;

/**
 * The SPI's own version. A host refuses a plugin built against a different {@link #MAJOR}; a
 * plugin built against an older {@link #MINOR} of the same major runs unchanged.
 */
public final class SpiVersion {
    /** Incompatible changes bump this. */
    public static final int MAJOR = 1;
    /** Compatible additions (new default methods, new constants) bump this. */
    public static final int MINOR = 7;

    private SpiVersion() {
    }

    /** The version as {@code MAJOR.MINOR}. */
    public static String string() {
        return MAJOR + "." + MINOR;
    }
}
