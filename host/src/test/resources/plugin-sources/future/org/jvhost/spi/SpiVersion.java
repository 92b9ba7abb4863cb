package org.jvhost.spi;

/** Stands in for a future SPI at compile time only (left out of the jar): MAJOR is 2 there. */
public final class SpiVersion {
    public static final int MAJOR = 2;
    public static final int MINOR = 0;

    private SpiVersion() {
    }
}
