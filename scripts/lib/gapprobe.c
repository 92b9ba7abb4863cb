/*
 * gapprobe: the traffic gap as a guest sees it, through a reflecting back-end (the loopback device,
 * which returns every frame with its MAC addresses swapped). Runs in the test guest (built static by
 * scripts/build-guest.sh, jvtest.mode=gap).
 *
 *   gapprobe IFACE INTERVAL_US WINDOW_MS
 *
 * Sends one frame every INTERVAL_US microseconds on IFACE from an AF_PACKET socket, forever, and
 * records when each reflected frame comes back. Every WINDOW_MS it prints one line:
 *
 *   JVTEST GAP w=W sent=S recv=R lost=L dup=D refused=F maxgap_us=G netgap_us=E maxrtt_us=T stall_us=P late=N
 *
 *   S, R     frames sent and frames received back (distinct sequence numbers), since the start
 *   F        frames the guest's kernel refused (its queues full while the back-end is away), not sent
 *   L        sequence numbers sent more than LOSS_AFTER_MS ago that never came back, since the start
 *   D        frames that came back a second time, since the start
 *   G        the longest time between two consecutive arrivals that ended in this window: the traffic
 *            gap as the guest sees it (a stop of the back-end shows here, however long it lasts)
 *   E        the longest such gap less the time the probe itself ran late in it (more than
 *            STALL_SLACK_US after it asked to wake, or between two steps that do not wait): what the
 *            guest spent awake waiting for frames. Under TCG
 *            on a busy host the guest's vCPU thread stops for tens or hundreds of ms at a time, and
 *            frames waiting in the ring meanwhile are read at once when it runs again, so such a stop
 *            is the guest's, not the back-end's
 *   T        the longest round trip of a frame that arrived in this window (frames held in a ring
 *            across a stop arrive late rather than get lost)
 *   P        the probe's longest stall in this window (a stall longer than the guest's RX ring lasts at
 *            this rate, 256 frames, loses frames at any back-end: the reflector finds the ring full)
 *   N        send slots this window missed because the guest itself ran late (TCG on a busy host):
 *            a guest that cannot send cannot see arrivals either, so G must be read beside N
 *
 * Frame: | dst 02:00:00:00:00:01 | src (IFACE's MAC) | EtherType 0x88b5 (local experimental) |
 *        | magic "JVGP" | seq (u32) | sent at, CLOCK_MONOTONIC ns (u64) | zeros to 60 bytes |
 * The reflector swaps the addresses, so the frame comes back addressed to our MAC.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ETHERTYPE 0x88b5
#define FRAME_LEN 60
#define MAX_SEQ (1u << 22)          /* 4M frames: 14 minutes at 200 us */
#define LOSS_AFTER_MS 2000
#define STALL_SLACK_US 1000
#define HISTORY 64                  /* windows of sent counts kept: LOSS_AFTER_MS / WINDOW_MS must be less */

static uint8_t seen[MAX_SEQ / 8];
static uint64_t expected;  /* the latest time the probe should run again (now, or the end of its sleep) */
static uint64_t overslept; /* since the last arrival: how much later than expected the probe ran, in sum */
static uint64_t max_stall; /* this window: the longest of those stalls */

/* Notes when the probe runs: later than expected by more than the slack is a stall of the guest's. */
static void ran_at(uint64_t now, uint64_t next_expected) {
    if (now > expected + STALL_SLACK_US * 1000u) {
        overslept += now - expected;
        max_stall = now - expected > max_stall ? now - expected : max_stall;
    }
    expected = next_expected;
}

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t) t.tv_sec * 1000000000u + (uint64_t) t.tv_nsec;
}

static int open_socket(const char *iface, struct sockaddr_ll *to, uint8_t *mac) {
    int fd = socket(AF_PACKET, SOCK_RAW, htons(ETHERTYPE));
    if (fd < 0) {
        perror("gapprobe: socket");
        exit(1);
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, iface, IFNAMSIZ - 1);
    if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
        perror("gapprobe: SIOCGIFHWADDR");
        exit(1);
    }
    memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    memset(to, 0, sizeof *to);
    to->sll_family = AF_PACKET;
    to->sll_protocol = htons(ETHERTYPE);
    to->sll_ifindex = (int) if_nametoindex(iface);
    to->sll_halen = 6;
    if (to->sll_ifindex == 0 || bind(fd, (struct sockaddr *) to, sizeof *to) < 0) {
        perror("gapprobe: bind");
        exit(1);
    }
    return fd;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: gapprobe IFACE INTERVAL_US WINDOW_MS\n");
        return 2;
    }
    uint64_t interval = strtoull(argv[2], NULL, 10) * 1000u;
    uint64_t window = strtoull(argv[3], NULL, 10) * 1000000u;
    struct sockaddr_ll to;
    uint8_t frame[FRAME_LEN] = {0}, in[2048];
    int fd = open_socket(argv[1], &to, frame + 6);
    static const uint8_t peer[6] = {0x02, 0, 0, 0, 0, 0x01};
    memcpy(frame, peer, 6);
    memcpy(to.sll_addr, peer, 6);
    frame[12] = ETHERTYPE >> 8;
    frame[13] = ETHERTYPE & 0xff;
    memcpy(frame + 14, "JVGP", 4);

    uint64_t windows_back = window == 0 ? HISTORY : (uint64_t) LOSS_AFTER_MS * 1000000u / window;
    if (interval == 0 || windows_back >= HISTORY) {
        fprintf(stderr, "gapprobe: INTERVAL_US must be > 0 and WINDOW_MS > %d\n", LOSS_AFTER_MS / HISTORY);
        return 2;
    }
    uint32_t sent = 0, recv = 0, dup = 0, lost = 0, refused = 0, checked = 0, late = 0, w = 0;
    uint32_t sent_by[HISTORY] = {0}; /* sent_by[w % HISTORY]: frames sent by the end of window w */
    uint64_t start = now_ns(), next_send = start, next_window = start + window, last_arrival = 0;
    uint64_t max_gap = 0, max_net_gap = 0, max_rtt = 0;
    expected = start;
    for (;;) {
        uint64_t now = now_ns();
        ran_at(now, now);
        if (now >= next_send && sent < MAX_SEQ) {
            memcpy(frame + 18, &sent, 4);
            memcpy(frame + 22, &now, 8);
            /* while the back-end is away the TX ring and then the qdisc fill, and the kernel refuses */
            if (sendto(fd, frame, FRAME_LEN, MSG_DONTWAIT, (struct sockaddr *) &to, sizeof to) == FRAME_LEN) {
                sent++;
            } else {
                refused++;
            }
            next_send += interval;
            if (now > next_send + interval) { /* the guest ran late: skip the slots, no burst */
                late += (uint32_t) ((now - next_send) / interval);
                next_send = now + interval;
            }
        }
        if (now >= next_window) {
            /* lost: sent by the end of the window LOSS_AFTER_MS ago, and never seen back */
            if (w >= windows_back) {
                for (uint32_t upto = sent_by[(w - windows_back) % HISTORY]; checked < upto; checked++) {
                    lost += !(seen[checked / 8] & (1u << (checked % 8)));
                }
            }
            sent_by[w % HISTORY] = sent;
            printf("JVTEST GAP w=%u sent=%u recv=%u lost=%u dup=%u refused=%u maxgap_us=%llu netgap_us=%llu"
                   " maxrtt_us=%llu stall_us=%llu late=%u\n", w, sent, recv, lost, dup, refused, (unsigned long long) (max_gap / 1000),
                   (unsigned long long) (max_net_gap / 1000), (unsigned long long) (max_rtt / 1000), (unsigned long long) (max_stall / 1000), late);
            fflush(stdout);
            w++;
            max_gap = max_net_gap = max_rtt = max_stall = 0;
            late = 0;
            next_window += window;
        }
        uint64_t until = next_send < next_window ? next_send : next_window;
        now = now_ns();
        ran_at(now, until > now ? until : now);
        struct timespec wait = {0, 0};
        if (until > now) {
            wait.tv_sec = (time_t) ((until - now) / 1000000000u);
            wait.tv_nsec = (long) ((until - now) % 1000000000u);
        }
        struct pollfd p = {fd, POLLIN, 0};
        int ready = ppoll(&p, 1, &wait, NULL);
        now = now_ns();
        ran_at(now, now);
        if (ready <= 0) {
            continue;
        }
        for (;;) {
            struct sockaddr_ll from;
            socklen_t len = sizeof from;
            ssize_t n = recvfrom(fd, in, sizeof in, MSG_DONTWAIT, (struct sockaddr *) &from, &len);
            if (n < 0) {
                break;
            }
            if (n < 30 || from.sll_pkttype == PACKET_OUTGOING || memcmp(in + 14, "JVGP", 4) != 0) {
                continue;
            }
            uint64_t arrived = now_ns(), at;
            ran_at(arrived, arrived);
            uint32_t seq;
            memcpy(&seq, in + 18, 4);
            memcpy(&at, in + 22, 8);
            if (seq >= sent) {
                continue;
            }
            if (seen[seq / 8] & (1u << (seq % 8))) {
                dup++;
                continue;
            }
            seen[seq / 8] |= (uint8_t) (1u << (seq % 8));
            recv++;
            if (last_arrival != 0) {
                uint64_t gap = arrived - last_arrival;
                uint64_t net = gap > overslept ? gap - overslept : 0;
                max_gap = gap > max_gap ? gap : max_gap;
                max_net_gap = net > max_net_gap ? net : max_net_gap;
            }
            overslept = 0;
            if (arrived - at > max_rtt) {
                max_rtt = arrived - at;
            }
            last_arrival = arrived;
        }
    }
}
