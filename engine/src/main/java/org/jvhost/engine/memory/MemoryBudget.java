package org.jvhost.engine.memory;

import java.util.concurrent.atomic.AtomicLong;

/**
 * How much guest memory jvhost maps: at most {@link #connectionLimit()} bytes per front-end connection
 * and {@link #hostLimit()} bytes over all connections together. Each mapping's length is counted from
 * just before its mmap until its munmap.
 *
 * <p>Why: a region costs the front-end nothing but a sparse file (509 ADD_MEM_REG of 256 GiB sparse
 * memfds map 127 TiB, nearly all of the x86-64 user address space), after which every other device's
 * SET_MEM_TABLE, and the JVM itself, fail with ENOMEM. The defaults leave room for any plausible guest
 * ({@link #DEFAULT_CONNECTION_LIMIT}) and for the JVM ({@link #DEFAULT_HOST_LIMIT}, half the address
 * space); operators set both with {@code serve --max-guest-memory} and {@code --max-mapped-memory}.
 *
 * <p>The host-wide count is shared by the control threads, hence atomic; an {@link Account} belongs to one
 * connection and is used on its control thread only.
 */
public final class MemoryBudget {
    private static final long TIB = 1L << 40;
    /** Per connection: 4 TiB, more than QEMU's largest x86-64 guests. */
    public static final long DEFAULT_CONNECTION_LIMIT = 4 * TIB;
    /** All connections together: 64 TiB, half the 128 TiB a 47-bit x86-64 address space holds. */
    public static final long DEFAULT_HOST_LIMIT = 64 * TIB;
    /** The {@code serve} option (and {@code [host]} key) that sets {@link #connectionLimit()}. */
    public static final String CONNECTION_OPTION = "max-guest-memory";
    /** The {@code serve} option (and {@code [host]} key) that sets {@link #hostLimit()}. */
    public static final String HOST_OPTION = "max-mapped-memory";

    private final long hostLimit;
    private final long connectionLimit;
    private final AtomicLong hostMapped = new AtomicLong();

    /**
     * @throws IllegalArgumentException if a limit is not positive
     */
    public MemoryBudget(long hostLimit, long connectionLimit) {
        if (hostLimit <= 0 || connectionLimit <= 0) {
            throw new IllegalArgumentException("memory limits must be positive: " + HOST_OPTION + " " + hostLimit
                    + ", " + CONNECTION_OPTION + " " + connectionLimit);
        }
        this.hostLimit = hostLimit;
        this.connectionLimit = connectionLimit;
    }

    /** The defaults: {@link #DEFAULT_HOST_LIMIT} and {@link #DEFAULT_CONNECTION_LIMIT}. */
    public static MemoryBudget defaults() {
        return new MemoryBudget(DEFAULT_HOST_LIMIT, DEFAULT_CONNECTION_LIMIT);
    }

    public long hostLimit() {
        return hostLimit;
    }

    public long connectionLimit() {
        return connectionLimit;
    }

    /** Bytes mapped now over all connections. */
    public long hostMapped() {
        return hostMapped.get();
    }

    /** A new, empty account for one connection. */
    public Account newAccount() {
        return new Account();
    }

    /** One connection's share of the budget. Control thread only. */
    public final class Account {
        private long mapped;

        private Account() {
        }

        /** Bytes this connection maps now. */
        public long mapped() {
            return mapped;
        }

        /**
         * Counts {@code bytes} about to be mapped for {@code region}.
         *
         * @throws MemoryMapException naming the limit that would be passed and the option that sets it
         */
        void reserve(long bytes, RegionSpec region) throws MemoryMapException {
            if (bytes > connectionLimit - mapped) {
                throw new MemoryMapException(String.format("%s: mapping 0x%x more bytes would pass this connection's "
                        + "guest-memory limit of %s (0x%x mapped already; --%s or [host] %s raises it)",
                        region, bytes, describe(connectionLimit), mapped, CONNECTION_OPTION, CONNECTION_OPTION));
            }
            long before = hostMapped.getAndAdd(bytes);
            if (bytes > hostLimit - before) {
                hostMapped.addAndGet(-bytes);
                throw new MemoryMapException(String.format("%s: mapping 0x%x more bytes would pass jvhost's limit of "
                        + "%s of guest memory over all connections (0x%x mapped already; --%s or [host] %s raises it)",
                        region, bytes, describe(hostLimit), before, HOST_OPTION, HOST_OPTION));
            }
            mapped += bytes;
        }

        /** Returns {@code bytes} reserved earlier (the mapping is gone). */
        void release(long bytes) {
            mapped -= bytes;
            hostMapped.addAndGet(-bytes);
        }
    }

    /**
     * A limit as operators write it: bytes, or a number with a binary unit, {@code K}, {@code M},
     * {@code G} or {@code T}, optionally followed by {@code iB} or {@code B} ({@code 4T}, {@code 512GiB},
     * {@code 1536 G}).
     *
     * @throws IllegalArgumentException naming the text, if it is not such a size or not positive
     */
    public static long parseLimit(String text) {
        String t = text.trim().toUpperCase(java.util.Locale.ROOT).replace(" ", "");
        t = t.endsWith("IB") ? t.substring(0, t.length() - 2) : t.endsWith("B") ? t.substring(0, t.length() - 1) : t;
        int shift = t.isEmpty() ? -1 : "KMGT".indexOf(t.charAt(t.length() - 1));
        String digits = shift < 0 ? t : t.substring(0, t.length() - 1);
        int bits = shift < 0 ? 0 : 10 * (shift + 1);
        try {
            long n = Long.parseLong(digits);
            if (n > 0 && n <= Long.MAX_VALUE >> bits) {
                return n << bits;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException("'" + text + "' is not a positive size (bytes, or a number with K, M, G "
                + "or T, e.g. 4T or 512G)");
    }

    /** {@code 4 TiB}, {@code 1536 GiB}, {@code 12345 bytes}: the largest binary unit that divides it. */
    static String describe(long bytes) {
        String[] units = {"TiB", "GiB", "MiB", "KiB"};
        for (int i = 0; i < units.length; i++) {
            int shift = 40 - 10 * i;
            if (bytes % (1L << shift) == 0) {
                return (bytes >> shift) + " " + units[i];
            }
        }
        return bytes + " bytes";
    }
}
