package org.jvhost.device.net;

import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.spi.Virtqueue;
import org.jvhost.spi.virtio.VirtioNet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The virtio-net control queue, for front-ends that hand it to the back-end (crosvm does; QEMU and
 * DPDK's virtio_user keep it and never ack VIRTIO_NET_F_CTRL_VQ to a vhost-user back-end). Each chain is
 * one {@code struct virtio_net_ctrl} (5.1.6.5): class and command, the command's data, then one
 * device-writable ack byte.
 *
 * <p>Two commands are served, the ones whose features the device offers: VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET
 * (with MQ) and VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET (with CTRL_GUEST_OFFLOADS). Every other class or
 * command (RX mode, MAC, VLAN, announce, RSS: none offered) and every command whose data is short or
 * out of range is answered VIRTIO_NET_ERR, so a driver that sends one anyway sees it fail and the device
 * state stays as it was. A chain without a writable byte cannot carry an answer: it goes back unanswered
 * (0 bytes written) and is counted as malformed.
 */
final class ControlQueue {
    private static final Logger LOG = LoggerFactory.getLogger(ControlQueue.class);

    /** What the commands change, carried out by the device. */
    interface Commands {
        /** Serve the first {@code pairs} queue pairs only (1..max, checked). @return false if that failed */
        boolean setQueuePairs(int pairs);

        /** Deliver only these GUEST_* offloads (a subset of the negotiated ones, checked). @return false if that failed */
        boolean setGuestOffloads(long offloads);
    }

    static final int COMMANDS = 0, REJECTED = 1, MALFORMED = 2;
    /**
     * ctrl_commands: chains answered; ctrl_rejected: of those, answered VIRTIO_NET_ERR; ctrl_malformed:
     * chains with no writable byte for the answer, returned unanswered.
     */
    static final String[] COUNTER_NAMES = {"ctrl_commands", "ctrl_rejected", "ctrl_malformed"};

    /** Class, command and the largest data served (the le64 of GUEST_OFFLOADS_SET). */
    private static final int MAX_COMMAND = VirtioNet.CTRL_HDR_LEN + 8;

    private final String name;
    private final int maxPairs;
    private final Commands commands;
    private final byte[] command = new byte[MAX_COMMAND];
    private final byte[] ack = new byte[1];
    private final OwnedCounters counters = new OwnedCounters(COUNTER_NAMES.length);

    private Virtqueue queue;
    private DescriptorChain chain;
    private long acked;
    private boolean malformedLogged;

    ControlQueue(String name, int maxPairs, Commands commands) {
        this.name = name;
        this.maxPairs = maxPairs;
        this.commands = commands;
    }

    void attach(Virtqueue q, long ackedFeatures) {
        queue = q;
        chain = q.newChain();
        acked = ackedFeatures;
        malformedLogged = false;
    }

    Virtqueue detach() {
        Virtqueue q = queue;
        queue = null;
        chain = null;
        return q;
    }

    /** The virtqueue processing loop: every chain is answered in its writable part. */
    void drain() {
        Virtqueue q = queue;
        if (q == null) {
            return;
        }
        DescriptorChain c = chain;
        do {
            q.disableNotifications();
            while (q.pop(c)) {
                q.addUsed(c, serve(c));
            }
            q.signalUsed();
        } while (q.enableNotifications());
    }

    /** Executes one command. @return bytes written into the chain: 1 (the ack), or 0 if it has no room */
    private int serve(DescriptorChain c) {
        if (c.writableBytes() < 1) {
            increment(MALFORMED);
            if (!malformedLogged) {
                malformedLogged = true;
                LOG.warn("{}: control queue chain head {} has no device-writable byte for the ack ({} readable bytes); "
                        + "returned unanswered, counting further ones in ctrl_malformed", name, c.head(), c.readableBytes());
            }
            return 0;
        }
        byte result = execute(c);
        ack[0] = result;
        c.write(0, ack, 0, 1);
        increment(COMMANDS);
        if (result != VirtioNet.CTRL_OK) {
            increment(REJECTED);
        }
        return 1;
    }

    private byte execute(DescriptorChain c) {
        int length = c.read(0, command, 0, MAX_COMMAND);
        if (length < VirtioNet.CTRL_HDR_LEN) {
            LOG.debug("{}: control command of {} bytes has no class and command: VIRTIO_NET_ERR", name, length);
            return VirtioNet.CTRL_ERR;
        }
        int cls = command[0] & 0xff;
        int cmd = command[1] & 0xff;
        int dataLength = length - VirtioNet.CTRL_HDR_LEN;
        if (cls == VirtioNet.CTRL_MQ && cmd == VirtioNet.CTRL_MQ_VQ_PAIRS_SET
                && VirtioFeatures.has(acked, VirtioNet.F_MQ)) {
            return setQueuePairs(dataLength);
        }
        if (cls == VirtioNet.CTRL_GUEST_OFFLOADS && cmd == VirtioNet.CTRL_GUEST_OFFLOADS_SET
                && VirtioFeatures.has(acked, VirtioNet.F_CTRL_GUEST_OFFLOADS)) {
            return setGuestOffloads(dataLength);
        }
        LOG.debug("{}: control class {} command {} is not offered: VIRTIO_NET_ERR", name, cls, cmd);
        return VirtioNet.CTRL_ERR;
    }

    /** {@code struct virtio_net_ctrl_mq { le16 virtqueue_pairs; }}: 1..max_virtqueue_pairs (5.1.6.5.5). */
    private byte setQueuePairs(int dataLength) {
        if (dataLength < 2) {
            LOG.debug("{}: VQ_PAIRS_SET with {} data bytes, needs 2: VIRTIO_NET_ERR", name, dataLength);
            return VirtioNet.CTRL_ERR;
        }
        int pairs = (command[2] & 0xff) | (command[3] & 0xff) << 8;
        if (pairs < 1 || pairs > maxPairs) {
            LOG.debug("{}: VQ_PAIRS_SET {} outside 1..{}: VIRTIO_NET_ERR", name, pairs, maxPairs);
            return VirtioNet.CTRL_ERR;
        }
        LOG.debug("{}: driver enables {} queue pairs", name, pairs);
        return commands.setQueuePairs(pairs) ? VirtioNet.CTRL_OK : VirtioNet.CTRL_ERR;
    }

    /**
     * {@code le64 offloads}, bits numbered as the GUEST_* features (5.1.6.5.6.1). The driver must not
     * enable an offload it did not negotiate; one that tries gets VIRTIO_NET_ERR and no change.
     */
    private byte setGuestOffloads(int dataLength) {
        if (dataLength < 8) {
            LOG.debug("{}: GUEST_OFFLOADS_SET with {} data bytes, needs 8: VIRTIO_NET_ERR", name, dataLength);
            return VirtioNet.CTRL_ERR;
        }
        long offloads = 0;
        for (int i = 7; i >= 0; i--) {
            offloads = offloads << 8 | (command[2 + i] & 0xff);
        }
        long allowed = acked & VirtioNet.GUEST_OFFLOADS;
        if ((offloads & ~allowed) != 0) {
            LOG.debug("{}: GUEST_OFFLOADS_SET 0x{} asks for offloads not negotiated (0x{}): VIRTIO_NET_ERR", name,
                    Long.toHexString(offloads), Long.toHexString(allowed));
            return VirtioNet.CTRL_ERR;
        }
        return commands.setGuestOffloads(offloads) ? VirtioNet.CTRL_OK : VirtioNet.CTRL_ERR;
    }

    private void increment(int slot) {
        counters.add(slot, 1);
    }

    /** The counters, in {@link #COUNTER_NAMES} order: read from any thread, restored by a hot upgrade before any queue runs. */
    OwnedCounters counters() {
        return counters;
    }
}
