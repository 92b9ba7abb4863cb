/*
 * blkio: a guest-side disk load for scripts/bench-blk.sh (the guest has busybox, whose dd spawns a
 * process per request in a loop; fio and its libraries do not fit the initramfs). Statically linked.
 *
 *   blkio DEV MODE BS SECONDS THREADS [DEPTH]
 *     MODE: seqread | seqwrite | randread | randwrite, O_DIRECT. Each thread keeps DEPTH requests in
 *     flight (default 1: one pread/pwrite at a time; above 1: Linux native AIO, io_submit and
 *     io_getevents, as fio's libaio engine does, each completed request resubmitted at once), so
 *     THREADS x DEPTH requests are in flight. Sequential threads each walk their own slice of the
 *     device; random offsets are BS-aligned, from a per-thread xorshift generator.
 *   Prints: "BLKIO MODE bs=BS threads=T depth=D ios=N seconds=S iops=I mibps=M"
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const char *dev;
static int writing, random_io;
static long bs;
static double seconds;
static unsigned long long size;
static int threads;
static int depth = 1;

struct worker {
    pthread_t t;
    int index;
    unsigned long long ios;
    int failed;
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long long next_block(struct worker *w, unsigned long long blocks, unsigned long long slice,
                                     unsigned long long *next, unsigned long long *x) {
    if (random_io) {
        *x ^= *x << 13; *x ^= *x >> 7; *x ^= *x << 17;
        return *x % blocks;
    }
    unsigned long long block = (*next)++;
    if (*next >= slice * (w->index + 1)) {
        *next = slice * w->index;
    }
    return block;
}

/* DEPTH requests in flight on one thread: each completion is counted and its iocb resubmitted at once. */
static void run_aio(struct worker *w, int fd, unsigned long long blocks, unsigned long long slice,
                    unsigned long long next, unsigned long long x, double end) {
    aio_context_t ctx = 0;
    struct iocb cbs[64], *list[64];
    struct io_event events[64];
    if (syscall(SYS_io_setup, depth, &ctx) != 0) {
        w->failed = 1;
        return;
    }
    int inflight = 0;
    for (int i = 0; i < depth; i++) {
        void *b;
        if (posix_memalign(&b, 4096, bs) != 0) {
            w->failed = 1;
            break;
        }
        memset(b, 0x5a + w->index, bs);
        cbs[i] = (struct iocb) {.aio_fildes = fd, .aio_buf = (unsigned long) b, .aio_nbytes = bs,
                                .aio_lio_opcode = writing ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD,
                                .aio_data = i};
        cbs[i].aio_offset = next_block(w, blocks, slice, &next, &x) * bs;
        list[inflight++] = &cbs[i];
    }
    if (!w->failed && syscall(SYS_io_submit, ctx, inflight, list) != inflight) {
        w->failed = 1;
        inflight = 0;
    }
    int stopping = 0;
    while (inflight > 0) {
        struct timespec wait = {1, 0};
        long n = syscall(SYS_io_getevents, ctx, 1, depth, events, &wait);
        if (n <= 0) {
            w->failed = 1;
            break;
        }
        stopping |= now() >= end;
        int again = 0;
        for (long i = 0; i < n; i++) {
            inflight--;
            if (events[i].res != bs) {
                w->failed = 1;
                stopping = 1;
                continue;
            }
            w->ios++;
            if (!stopping) {
                struct iocb *cb = &cbs[events[i].data];
                cb->aio_offset = next_block(w, blocks, slice, &next, &x) * bs;
                list[again++] = cb;
            }
        }
        if (again > 0) {
            if (syscall(SYS_io_submit, ctx, again, list) != again) {
                w->failed = 1;
                stopping = 1;
            } else {
                inflight += again;
            }
        }
    }
    syscall(SYS_io_destroy, ctx);
}

static void *run(void *arg) {
    struct worker *w = arg;
    int fd = open(dev, (writing ? O_RDWR : O_RDONLY) | O_DIRECT);
    void *buf;
    if (fd < 0 || posix_memalign(&buf, 4096, bs) != 0) {
        w->failed = 1;
        return NULL;
    }
    memset(buf, 0x5a + w->index, bs);
    unsigned long long blocks = size / bs, slice = blocks / threads, next = slice * w->index;
    unsigned long long x = 88172645463325252ULL ^ (w->index + 1) * 0x9e3779b97f4a7c15ULL;
    double end = now() + seconds;
    if (depth > 1) {
        run_aio(w, fd, blocks, slice, next, x, end);
        close(fd);
        return NULL;
    }
    while (now() < end) {
        unsigned long long block = next_block(w, blocks, slice, &next, &x);
        ssize_t n = writing ? pwrite(fd, buf, bs, block * bs) : pread(fd, buf, bs, block * bs);
        if (n != bs) {
            w->failed = 1;
            break;
        }
        w->ios++;
    }
    close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: blkio DEV seqread|seqwrite|randread|randwrite BS SECONDS THREADS [DEPTH]\n");
        return 2;
    }
    dev = argv[1];
    writing = strstr(argv[2], "write") != NULL;
    random_io = strncmp(argv[2], "rand", 4) == 0;
    bs = atol(argv[3]);
    seconds = atof(argv[4]);
    threads = atoi(argv[5]);
    if (argc == 7) {
        depth = atoi(argv[6]);
    }
    int fd = open(dev, O_RDONLY);
    if (fd >= 0 && ioctl(fd, BLKGETSIZE64, &size) != 0) {
        size = lseek(fd, 0, SEEK_END); /* a regular file (to try the tool on the host) */
    }
    if (fd < 0 || bs <= 0 || threads < 1 || threads > 64 || depth < 1 || depth > 64
            || size / bs < (unsigned long long) threads) {
        fprintf(stderr, "blkio: cannot use %s\n", dev);
        return 1;
    }
    close(fd);
    struct worker w[64];
    double start = now();
    for (int i = 0; i < threads; i++) {
        w[i] = (struct worker) {.index = i};
        pthread_create(&w[i].t, NULL, run, &w[i]);
    }
    unsigned long long ios = 0;
    int failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(w[i].t, NULL);
        ios += w[i].ios;
        failed |= w[i].failed;
    }
    double took = now() - start;
    printf("BLKIO %s bs=%ld threads=%d depth=%d ios=%llu seconds=%.2f iops=%.0f mibps=%.2f%s\n", argv[2], bs,
           threads, depth, ios, took, ios / took, ios * (double) bs / took / 1048576, failed ? " FAILED" : "");
    return failed;
}
