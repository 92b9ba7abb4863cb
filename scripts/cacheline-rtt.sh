#!/usr/bin/env bash
# How long a cache line takes to go from CPU A to CPU B and back, which is what every frame of the
# loopback round trip pays several times (the front-end writes descriptors and frames on CPU 0, the
# back-end reads them on CPU 1, and the other way for used entries and RX buffers). On a virtual machine
# it depends on where the host placed the two vCPUs and can change from one second to the next
# (BENCHMARKS.md, issue 11). Builds a 30-line C program with gcc into a temporary directory: thread A
# writes x = i, thread B waits for it and writes y = i, A waits for y; 20 batches of N round trips.
#
# Usage: scripts/cacheline-rtt.sh [CPU_A CPU_B [N]]   (default 0 1 20000; prints min/median/max ns)
set -euo pipefail
a=${1:-0} b=${2:-1} n=${3:-20000}
command -v gcc > /dev/null || { echo "cacheline-rtt: needs gcc" >&2; exit 1; }
dir=$(mktemp -d /tmp/cacheline-rtt.XXXXXX)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/rtt.c" <<'C'
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
static volatile uint64_t x __attribute__((aligned(128)));
static volatile uint64_t y __attribute__((aligned(128)));
static long iters;
static void pin(int cpu) { cpu_set_t s; CPU_ZERO(&s); CPU_SET(cpu, &s); pthread_setaffinity_np(pthread_self(), sizeof s, &s); }
static void *echo(void *arg) { pin(*(int *)arg); for (long i = 1; i <= iters; i++) { while (x != (uint64_t)i) ; y = i; } return 0; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
static int cmp(const void *p, const void *q) { double d = *(const double *)p - *(const double *)q; return d < 0 ? -1 : d > 0; }
int main(int argc, char **argv) {
  int a = atoi(argv[1]), b = atoi(argv[2]), per = atoi(argv[3]), batches = 20;
  iters = (long)batches * per;
  pthread_t t; pthread_create(&t, 0, echo, &b); pin(a);
  double res[20]; long i = 1;
  for (int k = 0; k < batches; k++) {
    double t0 = now();
    for (int j = 0; j < per; j++, i++) { x = i; while (y != (uint64_t)i) ; }
    res[k] = (now() - t0) / per;
  }
  pthread_join(t, 0);
  qsort(res, batches, sizeof res[0], cmp);
  printf("cache line round trip cpu%d<->cpu%d: min %.0f median %.0f max %.0f ns\n", a, b, res[0], res[batches / 2], res[batches - 1]);
  return 0;
}
C
gcc -O2 -pthread -o "$dir/rtt" "$dir/rtt.c"
"$dir/rtt" "$a" "$b" "$n"
