/*
 * tapgen: fills a TAP's queue with frames, and times how fast its reader (the back-end under test)
 * drains it; for bench-net.sh --rx.
 *
 *   tapgen fill IFACE SIZE COUNT     sends COUNT frames of SIZE bytes (no FCS; 60 at least) into IFACE
 *                                    from an AF_PACKET socket, bursts of 64 per sendmmsg,
 *                                    PACKET_QDISC_BYPASS (straight into the TAP's queue, no qdisc).
 *                                    Prints "sent N refused M" (refused: the queue was full).
 *   tapgen drain IFACE BASE COUNT SECONDS
 *                                    reads IFACE's tx_packets (frames its reader took) every 100 us
 *                                    until it is COUNT above BASE or SECONDS passed;
 *                                    prints "drained N in T s, 10%-90% at R Mpps": R is the rate
 *                                    between the samples at which 10% and 90% of COUNT were taken
 *                                    (start-up and the tail left out).
 *
 * Frames: dst 02:00:00:00:00:01, src 02:00:00:00:00:02, EtherType 0x88b5 (local experimental), zeros.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BURST 64

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int fill(const char *iface, int size, long count) {
    int fd = socket(AF_PACKET, SOCK_RAW, 0);
    if (fd < 0) {
        perror("tapgen: socket(AF_PACKET)");
        return 1;
    }
    int one = 1;
    if (setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) < 0) {
        perror("tapgen: PACKET_QDISC_BYPASS");
        return 1;
    }
    struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_ifindex = (int) if_nametoindex(iface), .sll_halen = 6};
    if (to.sll_ifindex == 0) {
        perror("tapgen: if_nametoindex");
        return 1;
    }
    static unsigned char frame[9000];
    memcpy(frame, "\x02\0\0\0\0\x01\x02\0\0\0\0\x02\x88\xb5", 14);
    memcpy(to.sll_addr, frame, 6);
    struct iovec iov = {frame, (size_t) size};
    struct mmsghdr msgs[BURST];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BURST; i++) {
        msgs[i].msg_hdr.msg_name = &to;
        msgs[i].msg_hdr.msg_namelen = sizeof to;
        msgs[i].msg_hdr.msg_iov = &iov;
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    long sent = 0, refused = 0;
    while (sent + refused < count) {
        long left = count - sent - refused;
        int n = sendmmsg(fd, msgs, left < BURST ? (int) left : BURST, 0);
        if (n > 0) {
            sent += n;
        } else {
            refused++; /* sendmmsg stops at a frame the TAP refused (ENOBUFS): count it, go on */
        }
    }
    printf("sent %ld refused %ld\n", sent, refused);
    return 0;
}

static long counter(const char *path) {
    char buf[32];
    int fd = open(path, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (fd >= 0) {
        close(fd);
    }
    if (n <= 0) {
        return -1;
    }
    buf[n] = 0;
    return atol(buf);
}

static int drain(const char *iface, long base, long count, double seconds) {
    char path[128];
    snprintf(path, sizeof path, "/sys/class/net/%s/statistics/tx_packets", iface);
    if (counter(path) < 0) {
        perror(path);
        return 1;
    }
    double start = now(), t10 = 0, t90 = 0;
    long n10 = 0, n90 = 0, taken = 0;
    struct timespec pause = {0, 100000};
    for (double t = start; t < start + seconds && taken < count; t = now()) {
        taken = counter(path) - base;
        if (t10 == 0 && taken >= count / 10) {
            t10 = t;
            n10 = taken;
        }
        if (t90 == 0 && taken >= count * 9 / 10) {
            t90 = t;
            n90 = taken;
        }
        nanosleep(&pause, NULL);
    }
    double rate = t90 > t10 && t10 > 0 ? (n90 - n10) / (t90 - t10) / 1e6 : 0;
    printf("drained %ld in %.3f s, 10%%-90%% at %.3f Mpps\n", taken, now() - start, rate);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "fill") == 0 && atoi(argv[3]) >= 60 && atoi(argv[3]) <= 9000) {
        return fill(argv[2], atoi(argv[3]), atol(argv[4]));
    }
    if (argc == 6 && strcmp(argv[1], "drain") == 0 && atol(argv[4]) > 0) {
        return drain(argv[2], atol(argv[3]), atol(argv[4]), atof(argv[5]));
    }
    fprintf(stderr, "usage: tapgen fill IFACE SIZE(60..9000) COUNT | tapgen drain IFACE BASE COUNT SECONDS\n");
    return 2;
}
