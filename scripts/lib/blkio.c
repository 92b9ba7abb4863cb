/*
 * blkio: a guest-side disk load for scripts/bench-blk.sh (the guest has busybox, whose dd spawns a
 * process per request in a loop; fio and its libraries do not fit the initramfs). Statically linked.
 *
 *   blkio DEV MODE BS SECONDS THREADS
 *     MODE: seqread | seqwrite | randread | randwrite, O_DIRECT, one request at a time per thread
 *     (THREADS requests in flight). Sequential threads each walk their own slice of the device;
 *     random offsets are BS-aligned, from a per-thread xorshift generator.
 *   Prints: "BLKIO MODE bs=BS threads=T ios=N seconds=S iops=I mibps=M"
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <time.h>
#include <unistd.h>

static const char *dev;
static int writing, random_io;
static long bs;
static double seconds;
static unsigned long long size;
static int threads;

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
    while (now() < end) {
        unsigned long long block;
        if (random_io) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            block = x % blocks;
        } else {
            block = next++;
            if (next >= slice * (w->index + 1)) {
                next = slice * w->index;
            }
        }
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
    if (argc != 6) {
        fprintf(stderr, "usage: blkio DEV seqread|seqwrite|randread|randwrite BS SECONDS THREADS\n");
        return 2;
    }
    dev = argv[1];
    writing = strstr(argv[2], "write") != NULL;
    random_io = strncmp(argv[2], "rand", 4) == 0;
    bs = atol(argv[3]);
    seconds = atof(argv[4]);
    threads = atoi(argv[5]);
    int fd = open(dev, O_RDONLY);
    if (fd >= 0 && ioctl(fd, BLKGETSIZE64, &size) != 0) {
        size = lseek(fd, 0, SEEK_END); /* a regular file (to try the tool on the host) */
    }
    if (fd < 0 || bs <= 0 || threads < 1 || threads > 64
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
    printf("BLKIO %s bs=%ld threads=%d ios=%llu seconds=%.2f iops=%.0f mibps=%.2f%s\n", argv[2], bs, threads,
           ios, took, ios / took, ios * (double) bs / took / 1048576, failed ? " FAILED" : "");
    return failed;
}
