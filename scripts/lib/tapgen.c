/*
 * tapgen: sends Ethernet frames into a network interface (a TAP: the kernel then queues them for the
 * TAP's reader, the back-end under test) from an AF_PACKET socket, paced, for bench-net.sh --rx.
 *
 *   tapgen IFACE SIZE SECONDS MPPS
 *
 * SIZE bytes per frame (no FCS; 60 at least), for SECONDS, at about MPPS million frames per second: it
 * sends bursts of 32 frames with one sendmmsg and sleeps until the next burst is due, so it leaves the
 * rest of its CPU to whatever shares it (the front-end). A burst that is late is sent at once (no
 * catching up beyond one burst). PACKET_QDISC_BYPASS hands frames straight to the TAP's xmit, which
 * queues them for the reader or drops them when its queue is full (counted in the TAP's tx_dropped).
 * Prints "sent N refused M" at the end: frames the TAP queued, frames it refused (queue full, or no reader).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BURST 32

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: tapgen IFACE SIZE SECONDS MPPS\n");
        return 2;
    }
    const char *iface = argv[1];
    int size = atoi(argv[2]);
    double seconds = atof(argv[3]), mpps = atof(argv[4]);
    if (size < 60 || size > 9000 || seconds <= 0 || mpps <= 0) {
        fprintf(stderr, "tapgen: SIZE 60..9000, SECONDS and MPPS above 0\n");
        return 2;
    }
    prctl(PR_SET_TIMERSLACK, 1UL); /* sleeps of a few microseconds, not the default 50 */
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
    /* dst 02:00:00:00:00:01, src 02:00:00:00:00:02, ethertype 0x88b5 (local experimental), zero payload */
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
    double interval = BURST / (mpps * 1e6), start = now(), due = start, end = start + seconds;
    unsigned long long sent = 0, refused = 0;
    for (double t = start; t < end; t = now()) {
        if (t < due) {
            double wait = due - t;
            struct timespec ts = {(time_t) wait, (long) ((wait - (time_t) wait) * 1e9)};
            nanosleep(&ts, NULL);
        } else if (t > due + interval) {
            due = t; /* late: start the schedule again from now */
        }
        /* sendmmsg stops at a frame the TAP refused (its queue full: ENOBUFS): skip that one, send the rest */
        for (int i = 0; i < BURST;) {
            int n = sendmmsg(fd, msgs + i, BURST - i, 0);
            if (n > 0) {
                sent += (unsigned) n;
                i += n;
            }
            if (i < BURST) {
                refused++;
                i++;
            }
        }
        due += interval;
    }
    printf("sent %llu refused %llu\n", sent, refused);
    return 0;
}
