package org.jvhost.device.blk;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.jvhost.spi.Completion;
import org.jvhost.spi.DescriptorChain;
import org.jvhost.spi.DeviceContext;
import org.jvhost.spi.HostService;
import org.jvhost.spi.InvalidOptionException;
import org.jvhost.spi.VhostUserDevice;
import org.jvhost.spi.Virtqueue;
import org.jvhost.spi.virtio.VirtioBlk;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A virtio-blk disk (virtio 1.2 section 5.2). The worker pops each request, checks it and either answers
 * it at once (GET_ID, a read the page cache holds whole, and every request it refuses: status IOERR or
 * UNSUPP) or starts it with a {@link Completion}: reads, writes and flushes on the disk's io_uring
 * ({@link UringIo}; what the submitting call does not finish, a worker or a reaper thread does), the rest
 * (DISCARD, WRITE_ZEROES), and everything when io_uring is off or full, on the device's I/O threads
 * ({@link BackingFile}). Whoever finishes a request writes its status byte and completes the chain, which
 * the host publishes on the worker. So a slow disk never holds the worker: other queues and devices on it
 * go on.
 *
 * <p>Hostile requests fail alone: a chain without a writable byte has nowhere to put a status and is
 * returned with nothing written; a short header, a data length that is not whole sectors, a range past
 * the end of the disk or a write to a read-only disk gets IOERR; an unknown type UNSUPP.
 */
final class BlkDevice implements VhostUserDevice {
    private static final Logger LOG = LoggerFactory.getLogger(BlkDevice.class);
    /** Most sectors one DISCARD or WRITE_ZEROES segment may cover (config space; 32 MiB). */
    static final int MAX_ZERO_SECTORS = 1 << 16;
    /** Budget of chains per kick, so a busy queue returns the worker to the others. */
    static final int BUDGET = 128;
    /** The smallest ring seg_max is sized for (QEMU vhost-user-blk's default queue-size). */
    static final int MIN_EXPECTED_RING = 128;

    private final String name;
    private final DeviceContext context;
    private final BlkConfig config;
    private final BackingFile file;
    /** Null: every request runs on the thread pool. */
    private final UringIo uring;
    private final Virtqueue[] queues;
    private final DescriptorChain[] chains;
    private final byte[] header = new byte[VirtioBlk.REQ_HDR_LEN];
    private final byte[] id;
    private final AtomicLong requests = new AtomicLong();
    private final AtomicLong errors = new AtomicLong();
    private final AtomicLong readBytes = new AtomicLong();
    private final AtomicLong writtenBytes = new AtomicLong();
    /**
     * The capacity the driver knows: read from the file at creation and at each config read (which is
     * how a driver learns a new size), so that checking a request against it costs no fstat. Written on
     * the control thread, read by workers.
     */
    private volatile long knownCapacity;

    BlkDevice(DeviceContext context, BlkConfig config, BackingFile file) throws InvalidOptionException {
        this.context = context;
        this.name = context.deviceName();
        this.config = config;
        this.file = file;
        this.queues = new Virtqueue[config.queues()];
        this.chains = new DescriptorChain[config.queues()];
        this.id = config.serial().getBytes(StandardCharsets.US_ASCII);
        this.uring = openUring();
        this.knownCapacity = capacityBytes();
    }

    /** The io_uring of {@code uring=on} or {@code auto}; with auto, null and a log line if refused. */
    private UringIo openUring() throws InvalidOptionException {
        if (config.uring().equals(BlkConfig.URING_OFF)) {
            return null;
        }
        try {
            UringIo io = UringIo.open(config.path(), config.readOnly(), this::finished, UringIo.SQ_ENTRIES, false);
            LOG.info("{}: reads, writes and flushes on io_uring, {} in flight at most", name, io.depth());
            return io;
        } catch (IOException | RuntimeException | LinkageError e) {
            String why = e instanceof IOException ? e.getMessage() : e.toString();
            if (config.uring().equals(BlkConfig.URING_ON)) {
                throw new InvalidOptionException(BlkConfig.OPT_URING, BlkConfig.OPT_URING + "=" + BlkConfig.URING_ON
                        + ": io_uring is not available: " + why);
            }
            LOG.warn("{}: io_uring refused ({}): reads and writes run on {} I/O threads", name, why, config.threads());
            return null;
        }
    }

    /** How an io_uring request ended, for the counters. Whoever reaps it (see {@link UringIo}). */
    private void finished(int type, int bytes, int result) {
        if (result != bytes) {
            failed(result < 0 ? "errno " + -result : result + " of " + bytes + " bytes");
        } else if (type == VirtioBlk.T_IN) {
            readBytes.addAndGet(bytes);
        } else if (type == VirtioBlk.T_OUT) {
            writtenBytes.addAndGet(bytes);
        }
    }

    private void failed(String why) {
        if (errors.getAndIncrement() == 0) {
            LOG.warn("{}: I/O on {} failed (later failures are only counted): {}", name, config.path(), why);
        }
    }

    @Override
    public int deviceType() {
        return VirtioBlk.DEVICE_ID;
    }

    @Override
    public int maxQueues() {
        return config.queues();
    }

    @Override
    public long features() {
        return VirtioBlk.F_SEG_MAX | VirtioBlk.F_BLK_SIZE | VirtioBlk.F_FLUSH | VirtioBlk.F_MQ
                | VirtioBlk.F_DISCARD | VirtioBlk.F_WRITE_ZEROES | (config.readOnly() ? VirtioBlk.F_RO : 0);
    }

    @Override
    public void ackFeatures(long acked) {
    }

    @Override
    public int configSize() {
        return VirtioBlk.CONFIG_SIZE;
    }

    /**
     * A resize is announced to the driver (config-change notice), and the host keeps requests in flight
     * in QEMU's inflight region, so a restarted jvhost replays them (reads and writes may be repeated).
     */
    @Override
    public java.util.Set<HostService> hostServices() {
        return java.util.Set.of(HostService.CONFIG_CHANGE_NOTICE, HostService.INFLIGHT_TRACKING);
    }

    /**
     * {@code jvhost ctl resize}: grows the backing file to {@code bytes} and tells the driver. A disk
     * only grows here: shrinking it under a running guest would cut off what the guest wrote.
     */
    @Override
    public void resize(long bytes) {
        if (file.readOnly()) {
            throw new IllegalArgumentException("the disk is read-only");
        }
        if (bytes % VirtioBlk.SECTOR_SIZE != 0 || bytes < capacityBytes()) {
            throw new IllegalArgumentException(bytes + " bytes: a disk grows to a whole number of "
                    + VirtioBlk.SECTOR_SIZE + "-byte sectors, at least its " + capacityBytes() + " bytes now");
        }
        try {
            file.growTo(bytes);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot grow the backing file: " + e.getMessage(), e);
        }
        context.notifyConfigChanged();
    }

    /**
     * The disk's size now, in bytes: the seam for a resize (a grown file is seen at the next config read;
     * announcing it to the driver is the host's config-change notification).
     */
    long capacityBytes() {
        return file.sizeBytes() & ~(long) (VirtioBlk.SECTOR_SIZE - 1);
    }

    @Override
    public void readConfig(int offset, byte[] dst) {
        ByteBuffer c = ByteBuffer.allocate(VirtioBlk.CONFIG_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        long capacity = capacityBytes();
        knownCapacity = capacity;
        c.putLong(VirtioBlk.CONFIG_CAPACITY, capacity >>> VirtioBlk.SECTOR_SHIFT);
        // GET_CONFIG comes before SET_VRING_NUM, and a chain longer than its ring breaks the queue: bound
        // segments by the smallest ring we expect (QEMU vhost-user-blk's default queue-size 128) minus the
        // header and status descriptors, as QEMU's own seg_max = queue_size - 2 (Linux puts such a request
        // in one indirect table of queue-size entries, which the engine accepts)
        c.putInt(VirtioBlk.CONFIG_SEG_MAX, MIN_EXPECTED_RING - 2);
        c.putInt(VirtioBlk.CONFIG_BLK_SIZE, VirtioBlk.SECTOR_SIZE);
        c.putShort(VirtioBlk.CONFIG_NUM_QUEUES, (short) config.queues());
        c.putInt(VirtioBlk.CONFIG_MAX_DISCARD_SECTORS, MAX_ZERO_SECTORS);
        c.putInt(VirtioBlk.CONFIG_MAX_DISCARD_SEG, 1);
        c.putInt(VirtioBlk.CONFIG_DISCARD_SECTOR_ALIGNMENT, 1);
        c.putInt(VirtioBlk.CONFIG_MAX_WRITE_ZEROES_SECTORS, MAX_ZERO_SECTORS);
        c.putInt(VirtioBlk.CONFIG_MAX_WRITE_ZEROES_SEG, 1);
        c.get(offset, dst);
    }

    /** Also, at the first queue's start, has its worker reap io_uring completions (see {@link UringIo}). */
    @Override
    public void startQueue(int queueIndex, Virtqueue queue) {
        if (uring != null) {
            uring.reapOnWorker(context, queueGroup(queueIndex));
        }
        queues[queueIndex] = queue;
        chains[queueIndex] = queue.newChain(); // sized for this ring
    }

    @Override
    public void handleKick(int queueIndex) {
        Virtqueue q = queues[queueIndex];
        DescriptorChain c = chains[queueIndex];
        int served = 0;
        do {
            q.disableNotifications();
            while (q.pop(c)) {
                serve(q, c);
                if (++served == BUDGET) {
                    submitPrepared();
                    q.signalUsed();
                    return;
                }
            }
            submitPrepared();
            q.signalUsed();
        } while (q.enableNotifications());
    }

    /** The kick's io_uring requests go to the kernel together, with one system call. */
    private void submitPrepared() {
        if (uring != null) {
            uring.submitPrepared();
        }
    }

    /** One request: answered now, or started on io_uring or an I/O thread. Worker. */
    private void serve(Virtqueue q, DescriptorChain c) {
        requests.incrementAndGet();
        if (c.writableBytes() < 1) {
            errors.incrementAndGet();
            q.addUsed(c, 0); // no byte for a status: nothing to say
            return;
        }
        int type = BlkRequest.type(c, header);
        long sector = BlkRequest.sector(header);
        long capacity = knownCapacity;
        switch (type) {
            case VirtioBlk.T_IN -> {
                int len = c.writableBytes() - 1;
                if (!BlkRequest.inside(sector, len, capacity)) {
                    answer(q, c, VirtioBlk.S_IOERR);
                    return;
                }
                long position = sector << VirtioBlk.SECTOR_SHIFT;
                if (uring != null && uring.readCached(c, len, position)) {
                    answer(q, c, VirtioBlk.S_OK);
                    // published now: the driver takes this one while the worker reads the next
                    q.signalUsed();
                    return;
                }
                ByteBuffer status = BlkRequest.statusByte(c);
                Completion done = q.defer(c);
                if (uring == null || !uring.read(c, len, position, done, status)) {
                    ByteBuffer[] data = BlkRequest.views(c, true, 0, len);
                    onPool(done, status, () -> {
                        file.read(data, position);
                        readBytes.addAndGet(len);
                    });
                }
            }
            case VirtioBlk.T_OUT -> {
                int len = c.readableBytes() - VirtioBlk.REQ_HDR_LEN;
                if (file.readOnly() || !BlkRequest.inside(sector, len, capacity)) {
                    answer(q, c, VirtioBlk.S_IOERR);
                    return;
                }
                long position = sector << VirtioBlk.SECTOR_SHIFT;
                ByteBuffer status = BlkRequest.statusByte(c);
                Completion done = q.defer(c);
                if (uring == null || !uring.write(c, VirtioBlk.REQ_HDR_LEN, len, position, done, status)) {
                    ByteBuffer[] data = BlkRequest.views(c, false, VirtioBlk.REQ_HDR_LEN, len);
                    onPool(done, status, () -> {
                        file.write(data, position);
                        writtenBytes.addAndGet(len);
                    });
                }
            }
            case VirtioBlk.T_FLUSH -> {
                ByteBuffer status = BlkRequest.statusByte(c);
                Completion done = q.defer(c);
                if (uring == null || !uring.flush(done, status)) {
                    onPool(done, status, file::flush);
                }
            }
            case VirtioBlk.T_GET_ID -> {
                int len = Math.min(VirtioBlk.ID_BYTES, c.writableBytes() - 1);
                byte[] answer = java.util.Arrays.copyOf(id, len); // zero-padded, as the spec has it
                c.write(0, answer, 0, len);
                answer(q, c, VirtioBlk.S_OK);
            }
            case VirtioBlk.T_DISCARD, VirtioBlk.T_WRITE_ZEROES -> zeroes(q, c, capacity);
            default -> answer(q, c, type == -1 ? VirtioBlk.S_IOERR : VirtioBlk.S_UNSUPP);
        }
    }

    /**
     * DISCARD and WRITE_ZEROES, one segment each (max_*_seg = 1): the range reads back as zeroes after
     * either (for DISCARD the spec leaves the contents open, so zeroes are a correct answer).
     */
    private void zeroes(Virtqueue q, DescriptorChain c, long capacity) {
        byte[] seg = new byte[VirtioBlk.DWZ_SEGMENT_LEN];
        boolean one = c.readableBytes() == VirtioBlk.REQ_HDR_LEN + VirtioBlk.DWZ_SEGMENT_LEN
                && c.read(VirtioBlk.REQ_HDR_LEN, seg, 0, seg.length) == seg.length;
        ByteBuffer b = ByteBuffer.wrap(seg).order(ByteOrder.LITTLE_ENDIAN);
        long sector = b.getLong(VirtioBlk.DWZ_SECTOR);
        long sectors = Integer.toUnsignedLong(b.getInt(VirtioBlk.DWZ_NUM_SECTORS));
        long bytes = sectors << VirtioBlk.SECTOR_SHIFT;
        if (!one || file.readOnly() || sectors > MAX_ZERO_SECTORS || !BlkRequest.inside(sector, bytes, capacity)) {
            answer(q, c, VirtioBlk.S_IOERR);
            return;
        }
        ByteBuffer status = BlkRequest.statusByte(c);
        onPool(q.defer(c), status, () -> file.zero(sector << VirtioBlk.SECTOR_SHIFT, bytes));
    }

    /** Work of an I/O thread. */
    private interface Io {
        void run() throws IOException;
    }

    /**
     * Runs {@code io} on an I/O thread, which writes the status and completes the deferred chain. The used
     * length is the whole writable part, whatever the outcome (as QEMU's virtio-blk does; so does
     * {@link UringIo}): the status byte is its last byte, and what the used length covers is what a live
     * migration copies again.
     */
    private void onPool(Completion done, ByteBuffer status, Io io) {
        int used = done.writableBytes();
        boolean queued = file.submit(() -> {
            byte st = VirtioBlk.S_OK;
            try {
                io.run();
            } catch (IOException | RuntimeException e) {
                st = VirtioBlk.S_IOERR;
                failed(e.toString());
            }
            status.put(0, st);
            done.complete(used);
        });
        if (!queued) {
            errors.incrementAndGet();
            status.put(0, (byte) VirtioBlk.S_IOERR);
            done.complete(used);
        }
    }

    /** Answers a request now, with the whole writable part as used length (see {@link #submit}). Worker. */
    private void answer(Virtqueue q, DescriptorChain c, int status) {
        if (status != VirtioBlk.S_OK) {
            errors.incrementAndGet();
        }
        if (c.writableBytes() > 0) {
            c.writeByte(c.writableBytes() - 1, (byte) status);
        }
        q.addUsed(c, c.writableBytes());
    }

    @Override
    public Virtqueue stopQueue(int queueIndex) {
        Virtqueue q = queues[queueIndex];
        queues[queueIndex] = null;
        return q;
    }

    @Override
    public void reset() {
        java.util.Arrays.fill(queues, null);
    }

    @Override
    public Map<String, Long> counters() {
        return Map.of("requests", requests.get(), "errors", errors.get(), "read_bytes", readBytes.get(),
                "written_bytes", writtenBytes.get(), "capacity_bytes", capacityBytes(), "io_uring", uring != null ? 1L : 0L);
    }

    @Override
    public void close() {
        if (uring != null) {
            uring.close();
        }
        file.close();
    }
}
