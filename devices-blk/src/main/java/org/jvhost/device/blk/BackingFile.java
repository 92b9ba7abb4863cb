package org.jvhost.device.blk;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The disk's backing file or block device, and the device's own bounded pool of I/O threads. Reads and
 * writes go straight between the file and guest memory (one readv or writev per request on the
 * guest's mapped windows, through a channel of the I/O thread's own; no copy in Java).
 *
 * <p>The pool has {@code threads} threads and a queue of {@link #QUEUE_LIMIT} requests; a request that
 * does not fit is refused ({@link #submit} returns false) and fails with IOERR instead of growing memory
 * without bound. The queues' rings bound what a front-end can have in flight anyway.
 */
final class BackingFile implements AutoCloseable {
    /** Requests waiting for an I/O thread, at most: 64 queues of 1024 entries. */
    static final int QUEUE_LIMIT = 65536;
    private static final int ZERO_CHUNK = 1 << 16;
    private static final ByteBuffer ZEROES = ByteBuffer.allocateDirect(ZERO_CHUNK);

    private final Path path;
    private final FileChannel channel;
    /**
     * One channel per I/O thread, each with a file position of its own: a request takes one, seeks and
     * moves all its segments with one readv or writev (a positional FileChannel call takes one buffer,
     * so a 125-segment request would be 125 system calls). A request holds its channel only while it
     * runs on a pool thread, and the pool has as many threads as channels, so one is always free.
     */
    private final ArrayBlockingQueue<FileChannel> vectored;
    private final boolean readOnly;
    private final ThreadPoolExecutor pool;

    private BackingFile(Path path, FileChannel channel, ArrayBlockingQueue<FileChannel> vectored, boolean readOnly,
            ThreadPoolExecutor pool) {
        this.path = path;
        this.channel = channel;
        this.vectored = vectored;
        this.readOnly = readOnly;
        this.pool = pool;
    }

    static BackingFile open(BlkConfig config) throws IOException {
        ArrayBlockingQueue<FileChannel> vectored = new ArrayBlockingQueue<>(config.threads());
        FileChannel ch = openChannel(config);
        try {
            for (int i = 0; i < config.threads(); i++) {
                vectored.add(openChannel(config));
            }
        } catch (IOException e) {
            closeAll(ch, vectored);
            throw e;
        }
        AtomicInteger n = new AtomicInteger();
        String name = config.path().getFileName() == null ? "blk" : config.path().getFileName().toString();
        ThreadPoolExecutor pool = new ThreadPoolExecutor(config.threads(), config.threads(), 30, TimeUnit.SECONDS,
                new ArrayBlockingQueue<>(QUEUE_LIMIT), r -> {
                    Thread t = new Thread(r, "jvhost-blk-io-" + name + "-" + n.incrementAndGet());
                    t.setDaemon(true);
                    return t;
                });
        pool.allowCoreThreadTimeOut(true);
        return new BackingFile(config.path(), ch, vectored, config.readOnly(), pool);
    }

    private static FileChannel openChannel(BlkConfig config) throws IOException {
        return config.readOnly() ? FileChannel.open(config.path(), StandardOpenOption.READ)
                : FileChannel.open(config.path(), StandardOpenOption.READ, StandardOpenOption.WRITE);
    }

    private static void closeAll(FileChannel ch, Iterable<FileChannel> more) {
        try {
            ch.close();
        } catch (IOException e) {
            // closing a file we only read or wrote through positional calls: nothing is lost
        }
        for (FileChannel c : more) {
            try {
                c.close();
            } catch (IOException e) {
                // as above
            }
        }
    }

    boolean readOnly() {
        return readOnly;
    }

    /**
     * The disk's size in bytes, read now (the file may have grown): a regular file's length, or for a
     * block device (whose stat size is 0) {@code /sys/dev/block/MAJOR:MINOR/size} sectors.
     */
    long sizeBytes() {
        try {
            long size = channel.size();
            if (size == 0 && Files.isRegularFile(path)) {
                return 0;
            }
            return size != 0 ? size : blockDeviceSize();
        } catch (IOException e) {
            return 0;
        }
    }

    private long blockDeviceSize() throws IOException {
        long rdev = ((Number) Files.getAttribute(path, "unix:rdev")).longValue();
        long major = (rdev >>> 8) & 0xfff | ((rdev >>> 32) & ~0xfffL);
        long minor = (rdev & 0xff) | ((rdev >>> 12) & ~0xffL);
        Path sys = Path.of("/sys/dev/block/" + major + ":" + minor + "/size");
        return Long.parseLong(Files.readString(sys).trim()) << 9;
    }

    /** Grows a regular file to {@code bytes} (sparse); a block device cannot. */
    void growTo(long bytes) throws IOException {
        if (!Files.isRegularFile(path)) {
            throw new IOException(path + " is not a regular file: a block device's size is its own");
        }
        if (channel.size() < bytes) {
            channel.write(ByteBuffer.allocate(1), bytes - 1); // extends the file; the hole reads as zeroes
        }
    }

    /** Runs {@code io} on an I/O thread; false if the pool is full or closed. */
    boolean submit(Runnable io) {
        try {
            pool.execute(io);
            return true;
        } catch (RejectedExecutionException e) {
            return false;
        }
    }

    /** Fills {@code dst} from {@code position}; an end of file before they are full is an error. I/O thread. */
    void read(ByteBuffer[] dst, long position) throws IOException {
        FileChannel ch = take();
        try {
            ch.position(position);
            for (long left = remaining(dst); left > 0; ) {
                long n = ch.read(dst); // readv
                if (n < 0) {
                    throw new IOException("end of " + path + " at byte " + ch.position());
                }
                left -= n;
            }
        } finally {
            vectored.add(ch);
        }
    }

    /** Writes every byte of {@code src} at {@code position}. I/O thread. */
    void write(ByteBuffer[] src, long position) throws IOException {
        FileChannel ch = take();
        try {
            ch.position(position);
            for (long left = remaining(src); left > 0; ) {
                left -= ch.write(src); // writev
            }
        } finally {
            vectored.add(ch);
        }
    }

    private FileChannel take() throws IOException {
        FileChannel ch = vectored.poll();
        if (ch == null) { // cannot happen: as many channels as pool threads
            throw new IOException("no free channel on " + path);
        }
        return ch;
    }

    private static long remaining(ByteBuffer[] buffers) {
        long n = 0;
        for (ByteBuffer b : buffers) {
            n += b.remaining();
        }
        return n;
    }

    /** Writes {@code len} zero bytes at {@code position}. */
    void zero(long position, long len) throws IOException {
        long pos = position;
        long end = position + len;
        while (pos < end) {
            ByteBuffer z = ZEROES.duplicate();
            z.limit((int) Math.min(ZERO_CHUNK, end - pos));
            while (z.hasRemaining()) {
                pos += channel.write(z, pos);
            }
        }
    }

    /** Makes what was written durable (fdatasync). */
    void flush() throws IOException {
        channel.force(false);
    }

    @Override
    public void close() {
        pool.shutdown();
        try {
            if (!pool.awaitTermination(5, TimeUnit.SECONDS)) {
                pool.shutdownNow();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        closeAll(channel, vectored); // nothing was left to write: every request finished or was refused
    }
}
