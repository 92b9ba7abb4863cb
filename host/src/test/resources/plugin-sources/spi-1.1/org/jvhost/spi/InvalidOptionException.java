package org.jvhost.spi;

/** A device option has a value the device cannot accept. The message names the key and the value. */
public class InvalidOptionException extends Exception {
    private static final long serialVersionUID = 1L;
    private final String key;

    public InvalidOptionException(String key, String message) {
        super(message);
        this.key = key;
    }

    /** The offending option key. */
    public String key() {
        return key;
    }
}
