package org.jvhost.device.net;

import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.VirtioFeatures;
import org.jvhost.spi.Virtqueue;
import org.jvhost.spi.virtio.VirtioNet;

/**
 * One batch of TAP reads into a receive queue's chains: {@link #gather} pops chains for up to
 * {@link #MAX_SLOTS} frames and lays out one iovec range (a slot) per frame to read; after the reads
 * ({@link Tap#readFrames}), {@link #deliver} hands the frames to the driver in the order they were read
 * and puts back the chains no frame needed.
 *
 * <pre>
 * chains popped (pool order = avail order):  c0 c1 c2 | c3 c4 | c5 ...
 * slots (one read each):                     slot 0   | slot 1 | slot 2 ...      (room >= the largest frame)
 * iovecs (one array):                        | c0's writable segments | c1's | ... | c5's | ...
 * after the reads:  slot 0: 1400 bytes (c0), slot 1: EAGAIN, slot 2: 60 bytes
 * delivered:        frame of slot 0 in c0; frame of slot 2 moved into c1 (the next free chain);
 *                   c2 .. last put back (unpop), so the driver's buffers stay in ring order
 * </pre>
 *
 * <p>A frame normally lands where it is delivered. It is moved (one memmove per piece, inside guest
 * memory) only when an earlier slot was left empty or held chains the earlier frame did not need: a
 * read that found the TAP empty while a later one of the same batch found a frame that arrived
 * meanwhile, a dropped frame, or mergeable buffers smaller than a frame's room. Chains in the middle of
 * what was popped cannot be put back, so frames close up behind one another instead.
 *
 * <p>Nothing is allocated per batch; used by the pair's worker only.
 */
final class RxBatch {
    /** Frames one batch reads at most: one io_uring_enter for all of them. */
    static final int MAX_SLOTS = 32;
    /** RX chains one frame may span with MRG_RXBUF: a 64 KiB GSO frame in 1.5 KiB buffers needs 44. */
    static final int MAX_RX_CHAINS = 64;
    private static final int ETH_HLEN = 14;
    /** Ethernet header plus one VLAN tag, on top of the MTU. */
    private static final int LINK_OVERHEAD = ETH_HLEN + 4;
    /** The most an IPv4/IPv6 GSO packet carries (16-bit length), the size of a guest-GSO frame. */
    private static final int GSO_MAX = 65535;
    private static final int DEFAULT_MTU = 1500;

    private final IovecArray iov;
    private final int mtu;
    /** Per slot: its first iovec and how many, what the read returned, and its room in bytes. */
    final int[] firsts = new int[MAX_SLOTS];
    final int[] counts = new int[MAX_SLOTS];
    final long[] results = new long[MAX_SLOTS];
    private final long[] slotRoom = new long[MAX_SLOTS];
    /** Per slot, its first chain in the pool; entry {@code slots} is the number of chains popped. */
    private final int[] slotChain = new int[MAX_SLOTS + 1];
    private final byte[] numBuffers = new byte[2];

    private int headerLength = VirtioNet.HDR_LEN;
    private boolean mergeable;
    /** Room to gather per slot: enough for the largest frame the TAP may hand over. */
    private int rxTarget;
    /** Less room than this and the slot is not read rather than risk truncating an MTU-sized frame. */
    private int rxMinimum;
    private DescriptorChain[] chains = new DescriptorChain[0];
    /** Per chain in the pool, its first iovec; entry {@code popped} is where the next would start. */
    private int[] chainIov = new int[1];
    private int[] written = new int[0];
    private int slots;

    // the outcome of the last deliver()
    int delivered;
    long deliveredBytes;
    int truncated;
    int errors;
    /** A read of the last batch found the TAP empty (EAGAIN). */
    boolean drained;

    RxBatch(IovecArray iov, int mtu) {
        this.iov = iov;
        this.mtu = mtu == 0 ? DEFAULT_MTU : mtu;
        setFeatures(VirtioFeatures.VERSION_1);
    }

    /** Adopts the negotiated features: header length, mergeable buffers, how big a received frame can be. */
    void setFeatures(long acked) {
        headerLength = VirtioNet.headerLength(acked);
        mergeable = VirtioFeatures.has(acked, VirtioNet.F_MRG_RXBUF);
        boolean guestGso = (acked & (VirtioNet.F_GUEST_TSO4 | VirtioNet.F_GUEST_TSO6 | VirtioNet.F_GUEST_UFO)) != 0;
        rxMinimum = headerLength + Math.max(mtu, DEFAULT_MTU) + LINK_OVERHEAD;
        rxTarget = guestGso ? headerLength + GSO_MAX + LINK_OVERHEAD : rxMinimum;
    }

    /**
     * A chain pool for {@code queue}: one chain per slot without MRG_RXBUF (a frame must fit one chain,
     * virtio 1.2 5.1.6.3.1), otherwise enough for a whole GSO frame or a batch of one-chain frames.
     */
    void attach(Virtqueue queue) {
        int pool = Math.min(queue.size(), mergeable ? Math.max(MAX_RX_CHAINS, 2 * MAX_SLOTS) : MAX_SLOTS);
        chains = new DescriptorChain[pool];
        for (int i = 0; i < pool; i++) {
            chains[i] = queue.newChain();
        }
        chainIov = new int[pool + 1];
        written = new int[pool];
    }

    void detach() {
        chains = new DescriptorChain[0];
        chainIov = new int[1];
        written = new int[0];
    }

    /**
     * Pops chains for up to {@code maxSlots} frames: each slot's chains until they hold {@link #rxTarget}
     * bytes (without MRG_RXBUF one chain, whatever its size). A slot with less room than
     * {@link #rxMinimum} (the ring, the pool or the iovecs ran out) is put back and ends the batch.
     *
     * @return slots to read (0: no buffers, or too little room to risk a read)
     */
    int gather(Virtqueue q, int maxSlots) {
        int c = 0;
        int entry = 0;
        int s = 0;
        boolean more = true;
        while (more && s < maxSlots) {
            int first = c;
            int firstEntry = entry;
            long room = 0;
            int limit = Math.min(chains.length, mergeable ? first + MAX_RX_CHAINS : first + 1);
            while (room < rxTarget) {
                if (c == limit) {
                    more = c < chains.length;
                    break;
                }
                DescriptorChain chain = chains[c];
                if (!q.pop(chain)) {
                    more = false;
                    break;
                }
                int from = chain.readableSegments();
                int end = chain.segmentCount();
                if (entry + end - from > TapNatives.IOV_MAX) {
                    q.unpop(1);
                    more = false;
                    break;
                }
                if (c == first) {
                    touchHeader(chain);
                }
                chainIov[c] = entry;
                for (int i = from; i < end; i++) {
                    iov.put(entry++, chain, i);
                }
                room += chain.writableBytes();
                c++;
            }
            if (c == first || (mergeable && room < rxMinimum)) {
                q.unpop(c - first);
                c = first;
                entry = firstEntry;
                break;
            }
            slotChain[s] = first;
            firsts[s] = firstEntry;
            counts[s] = entry - firstEntry;
            slotRoom[s] = room;
            s++;
        }
        slotChain[s] = c;
        chainIov[c] = entry;
        slots = s;
        return s;
    }

    /**
     * Writes a zero into the last header byte and the first frame byte of a slot's first chain (both
     * overwritten by the read), so that the cache lines the kernel will write are fetched for writing
     * here, 32 misses at once, rather than one after another inside the batch's reads: the driver last
     * touched these lines on its own CPU. In a drain of a full TAP at 64 B these two misses were a
     * third of the worker's kernel time (BENCHMARKS.md, issue 11 fifth session). A chain whose first
     * segment is shorter than that is left alone: a chain put back unused keeps what lies beyond.
     */
    private void touchHeader(DescriptorChain chain) {
        if (chain.segmentLength(chain.readableSegments()) > headerLength) {
            chain.writeShort(headerLength - 1, (short) 0);
        }
    }

    /**
     * Hands the frames {@link #results} report to the driver in slot order: each into the chains from the
     * next free one (moved there if it was read further along), with num_buffers set (5.1.6.4: 1 without
     * MRG_RXBUF); then puts back every chain from the first free one on. Sets {@link #delivered},
     * {@link #deliveredBytes} (without headers), {@link #truncated} (a frame longer than its slot: the
     * TAP truncated it, so it is dropped), {@link #errors} (a read that failed with anything but EAGAIN,
     * or returned less than a header) and {@link #drained}.
     */
    void deliver(Virtqueue q) {
        delivered = 0;
        deliveredBytes = 0;
        truncated = 0;
        errors = 0;
        drained = false;
        int free = 0; // the next chain a frame goes to
        for (int s = 0; s < slots; s++) {
            long n = results[s];
            if (n < 0) {
                if (n == -TapNatives.EAGAIN) {
                    drained = true;
                } else {
                    errors++;
                }
            } else if (n > slotRoom[s]) {
                truncated++;
            } else if (n < headerLength) {
                errors++;
            } else {
                if (slotChain[s] != free) {
                    iov.move(firsts[s], chainIov[free], n);
                }
                free = addUsed(q, free, n);
                delivered++;
                deliveredBytes += n - headerLength;
            }
        }
        q.unpop(slotChain[slots] - free);
    }

    /** Returns the chains from {@code first} that frame's {@code n} bytes fill; the next free chain. */
    private int addUsed(Virtqueue q, int first, long n) {
        int c = first;
        long left = n;
        while (left > 0) {
            int len = (int) Math.min(left, chains[c].writableBytes());
            written[c++] = len;
            left -= len;
        }
        int used = c - first;
        if (headerLength == VirtioNet.HDR_LEN) {
            // the TAP writes only the 10-byte struct virtio_net_hdr and skips the rest of the 12 bytes
            // (tun_put_user), so num_buffers is ours to set, little-endian (VERSION_1)
            numBuffers[0] = (byte) used;
            numBuffers[1] = (byte) (used >>> 8);
            chains[first].write(VirtioNet.HDR_NUM_BUFFERS, numBuffers, 0, 2);
        }
        for (int i = first; i < c; i++) {
            q.addUsed(chains[i], written[i]);
        }
        return c;
    }
}
