package org.jvhost.engine.instrument;

/**
 * The front-end rules strict mode checks, each with the spec section it comes from and a short quote
 * (or, where the spec says it in prose spread over several places, what it says). The name in lower
 * case is the rule's id in WARN lines, counters ({@code spec_violation.<id>}) and metrics.
 */
public enum SpecRule {
    FEATURES_NOT_OFFERED("virtio 1.2 §2.2.1",
            "The driver MUST NOT accept a feature which the device did not offer"),
    PROTOCOL_FEATURES_NOT_OFFERED("vhost-user \"Protocol features\"",
            "SET_PROTOCOL_FEATURES may only enable bits GET_PROTOCOL_FEATURES returned"),
    VRING_NUM_NOT_POWER_OF_2("virtio 1.2 §2.6 (split virtqueues)",
            "Queue Size value is always a power of 2"),
    RING_BEFORE_MEM_TABLE("vhost-user \"SET_VRING_ADDR\"",
            "ring addresses are front-end user addresses, translated through the memory table: "
                    + "SET_MEM_TABLE (or ADD_MEM_REG) comes first"),
    RING_OUTSIDE_MEMORY("vhost-user \"SET_VRING_ADDR\", \"SET_MEM_TABLE\"",
            "every ring part must lie inside one region of the memory table"),
    MISSING_VRING_CALL("vhost-user \"SET_VRING_CALL\"",
            "Set the event file descriptor to signal when buffers are used; "
                    + "a ring started without it cannot be signalled"),
    // The data path's rules: checked on the rings while strict mode is on, each reported once per queue
    // of a connection (InstrumentedQueue).
    AVAIL_IDX_BACKWARDS("virtio 1.2 §2.7.6 (The Virtqueue Available Ring)",
            "idx field indicates where the driver would put the next descriptor entry in the ring "
                    + "(modulo the queue size). This starts at 0, and increases"),
    AVAIL_IDX_TOO_FAR("virtio 1.2 §2.7.6, §2.7.13.3",
            "the available ring holds Queue Size entries: idx never runs more than Queue Size ahead of "
                    + "the buffers the device has taken"),
    TX_DEVICE_WRITABLE("virtio 1.2 §5.1.6.2 (Packet Transmission)",
            "The header and packet are added as one output descriptor to the transmitq"),
    BUFFER_REUSED("virtio 1.2 §2.7.13.1 (Placing Buffers into the Descriptor Table)",
            "Get the next free descriptor table entry: a chain is not free until the device returned it "
                    + "in the used ring"),
    KICK_WHILE_SUPPRESSED("virtio 1.2 §2.7.10.1 (Available Buffer Notification Suppression)",
            "If flags is 1, the driver SHOULD NOT send a notification; with VIRTIO_F_EVENT_IDX, unless idx "
                    + "passed avail_event, the driver SHOULD NOT send a notification");

    private final String section;
    private final String quote;

    SpecRule(String section, String quote) {
        this.section = section;
        this.quote = quote;
    }

    /** The rule's id: its name in lower case. */
    public String id() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    /** Where in the spec the rule is. */
    public String section() {
        return section;
    }

    /** What the spec says. */
    public String quote() {
        return quote;
    }

    /** {@code id (section: "quote")}, for a WARN line. */
    public String cite() {
        return id() + " (" + section + ": \"" + quote + "\")";
    }
}
