package org.jvhost.engine.memory;

/** A region could not be mapped or is inconsistent with the others. The message names the region. */
public final class MemoryMapException extends Exception {
    private static final long serialVersionUID = 1L;

    public MemoryMapException(String message) {
        super(message);
    }

    public MemoryMapException(String message, Throwable cause) {
        super(message, cause);
    }
}
