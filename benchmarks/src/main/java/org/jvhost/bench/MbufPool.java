package org.jvhost.bench;

import java.nio.ByteBuffer;
import org.jvhost.spi.GuestMemory;
import org.jvhost.testkit.GuestAccess;

/**
 * DPDK testpmd's mbuf pool as a vhost-user back-end sees it, for {@link LoopbackTwoThreads}: where
 * virtio_user's buffers lie in guest memory and in what order they come back. The harness's own
 * drivers give every descriptor one fixed, compact buffer (a few hundred KiB in all); testpmd posts
 * mbufs of a 16,384-object pool ({@code --total-num-mbufs=16384}, about 37 MiB), taken from and
 * returned to it as DPDK 22.11's {@code rte_mempool} does with testpmd's per-lcore cache of 250:
 *
 * <pre>
 * object (2368 bytes, 37 lines):
 * | mempool hdr (64) | rte_mbuf (128) | headroom (128) ... | data room (2048) |
 *                                                  ^ virtio-net header (12) at 308, frame at 320
 * </pre>
 *
 * <p>{@link #get}: from the top of the cache (LIFO); if it runs short, it is refilled from the pool's
 * ring (FIFO, objects in address order at first) with its size plus what is missing. {@link #put} (one
 * object, as {@code rte_pktmbuf_free} after a TX completion): onto the cache; if that would pass the
 * flush threshold (1.5 times the size), the whole cache goes to the ring's tail first. So whether the
 * objects in use stay a few hundred (the cache never over- or underflows) or wander through the
 * whole pool depends on how allocations and frees interleave, as in testpmd. A cache size of 0 sends
 * every object through the ring (all 37 MiB in turn); one as large as the pool never flushes.
 *
 * <p>The driver touches what virtio_user touches: {@link #get} stores to the object's rte_mbuf line and
 * {@link #put} loads it, as DPDK's alloc and free do; {@link #received} reads the virtio-net header's
 * num_buffers and the frame's first line (virtio_user prefetches it), {@link #prependHeader} reads the
 * header before the frame goes out again and writes only what is not zero. So the lines holding the
 * header and the frame's start are read on the front-end's CPU once per round trip, as on the real
 * path, and a device that stores into them takes them back. Not thread-safe: the driver thread's.
 */
final class MbufPool {
    /** Bytes per object: 64-byte mempool header, 128-byte rte_mbuf, 2176 bytes of headroom and data. */
    static final int STRIDE = 2368;
    private static final int MBUF = 64;
    /** Where virtio_user points a descriptor: the virtio-net header right before the data (headroom 128). */
    static final int HEADER = MBUF + 128 + 128 - 12;
    /** What virtio_user posts for receive: the data room and the header (2176 - 128 + 12). */
    static final int RX_LEN = 2048 + 12;
    /** RTE_MEMPOOL_CACHE_MAX_SIZE: a larger shortfall is taken from the ring directly. */
    private static final int MAX_REFILL = 512;

    private final long baseGpa;
    private final ByteBuffer bytes;
    private final int count;
    private final int cacheSize;
    private final int flushThreshold;
    private final int[] cache;
    private int cacheLen;
    private long refills;
    private long flushes;
    /** The pool's ring of object indices, FIFO. */
    private final int[] ring;
    private int ringHead;
    private int ringCount;
    /**
     * Sum of the first eight frame bytes of every buffer received: virtio_user's receive prefetches the
     * frame's first line (rte_packet_prefetch, on in DPDK's build configuration), which the summed load
     * stands for.
     */
    private long frameLines;

    /** {@code count} objects at {@code baseGpa}, all in the ring; a cache of {@code cacheSize}. */
    MbufPool(GuestMemory memory, long baseGpa, int count, int cacheSize) {
        this.baseGpa = baseGpa;
        this.bytes = GuestAccess.slice(memory, baseGpa, (int) bytes(count));
        this.count = count;
        this.cacheSize = Math.min(cacheSize, count);
        this.flushThreshold = this.cacheSize + this.cacheSize / 2;
        this.cache = new int[Math.max(flushThreshold, this.cacheSize + MAX_REFILL) + 1];
        this.ring = new int[count];
        for (int i = 0; i < count; i++) {
            ring[i] = i;
        }
        this.ringCount = count;
    }

    /** Guest memory {@code count} objects take. */
    static long bytes(int count) {
        return (long) count * STRIDE;
    }

    /**
     * Takes {@code n} objects, as {@code rte_mempool_get_bulk} with a cache: the cached ones first (top
     * down); then, if short, the cache refilled from the ring with its size plus what is missing, the
     * rest of the request taken from the top of that. The headers' guest addresses go to {@code gpas}.
     */
    void get(int n, long[] gpas) {
        int k = 0;
        while (k < n && cacheLen > 0) {
            gpas[k++] = take(cache[--cacheLen]);
        }
        int remaining = n - k;
        if (remaining == 0) {
            return;
        }
        if (cacheSize == 0 || remaining > MAX_REFILL) {
            while (k < n) {
                gpas[k++] = take(dequeue());
            }
            return;
        }
        refills++;
        int fill = Math.min(cacheSize + remaining, ringCount);
        for (int j = 0; j < fill; j++) {
            cache[j] = dequeue();
        }
        for (int j = fill - 1; k < n; j--) {
            gpas[k++] = take(cache[j]);
        }
        cacheLen = fill - remaining;
    }

    /** Returns the object whose header lies at {@code gpa}. */
    void put(long gpa) {
        int obj = (int) ((gpa - HEADER - baseGpa) / STRIDE);
        bytes.getLong(obj * STRIDE + MBUF); // rte_mbuf_raw_free reads the mbuf
        if (cacheSize == 0) {
            enqueue(obj);
            return;
        }
        if (cacheLen + 1 > flushThreshold) {
            flushes++;
            for (int j = 0; j < cacheLen; j++) {
                enqueue(cache[j]);
            }
            cacheLen = 0;
        }
        cache[cacheLen++] = obj;
    }

    /**
     * What virtio_user's receive does with a used buffer: reads num_buffers from the header at
     * {@code gpa} and sets the mbuf's lengths. Returns num_buffers.
     */
    int received(long gpa) {
        int numBuffers = Short.toUnsignedInt(bytes.getShort((int) (gpa - baseGpa) + 10));
        bytes.putLong((int) (gpa - baseGpa) - HEADER + MBUF + 32, 0); // pkt_len, data_len
        frameLines += bytes.getLong((int) (gpa - baseGpa) + 12); // rte_packet_prefetch of the frame's line
        return numBuffers;
    }

    /**
     * What virtio_user's transmit does before posting an mbuf: prepends a virtio-net header with no
     * offloads, storing each of its ten bytes of {@code struct virtio_net_hdr} only if it is not zero
     * already (virtqueue_clear_net_hdr, ASSIGN_UNLESS_EQUAL); num_buffers (bytes 10-11) is left as the
     * device wrote it. So a header the device left zero is read, not written.
     */
    void prependHeader(long gpa) {
        int at = (int) (gpa - baseGpa);
        bytes.putLong(at - HEADER + MBUF + 16, 0); // data_off, refcnt, nb_segs, port
        if (bytes.getLong(at) != 0) {
            bytes.putLong(at, 0);
        }
        if (bytes.getShort(at + 8) != 0) {
            bytes.putShort(at + 8, (short) 0);
        }
    }

    /** Writes {@code frame} (header and frame) into the object whose header lies at {@code gpa}. */
    void write(long gpa, byte[] frame) {
        bytes.put((int) (gpa - baseGpa), frame);
    }

    private long take(int obj) {
        bytes.putLong(obj * STRIDE + MBUF, 0); // rte_pktmbuf_reset writes the mbuf
        return baseGpa + (long) obj * STRIDE + HEADER;
    }

    private int dequeue() {
        if (ringCount == 0) {
            throw new IllegalStateException("mbuf pool of " + count + " is empty");
        }
        int obj = ring[ringHead];
        ringHead = ringHead + 1 == count ? 0 : ringHead + 1;
        ringCount--;
        return obj;
    }

    private void enqueue(int obj) {
        int at = ringHead + ringCount;
        ring[at < count ? at : at - count] = obj;
        ringCount++;
    }

    /** Times the cache was refilled from the ring and flushed to it: whether objects wander the pool. */
    String traffic() {
        return refills + " refills, " + flushes + " flushes";
    }
}
