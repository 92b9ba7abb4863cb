#!/usr/bin/env bash
# Guest-to-TAP throughput of a vhost-user net back-end: DPDK testpmd's virtio_user front-end sends in
# `txonly` mode (ring 256, burst 32, 1 queue pair, --no-huge) and the back-end writes every frame to a
# TAP in a network namespace of this script's own. Compares, interleaved so machine noise hits both alike:
#   jvhost : ip netns exec NS java -jar jvhost.jar serve --device net:socket=SOCK,tap=jvbtap0   (CPU 1)
#   dpdk   : ip netns exec NS dpdk-testpmd --vdev net_vhost0,iface=SOCK --vdev net_tap0,iface=jvbtap0
#            --forward-mode=io (port 0 -> port 1: vhost -> TAP)                                  (CPU 1)
# with the front-end on CPU 0. Rate = the TAP's rx_packets in the namespace (frames the kernel took from
# the back-end) per second, over a timed interval after a 1 s warm-up. jvhost writes to the TAP through
# io_uring by default (uring=auto); `-o uring=off` measures its one-writev-per-frame path.
#
# Usage: scripts/bench-net.sh [-r ROUNDS] [-d SECONDS] [-s "64 1500"] [--skip-jvhost] [--jar PATH] [-o DEVICE-OPTIONS]
# JVHOST_JAVA_OPTS (environment): extra JVM options for jvhost, e.g. a profiler agent.
# Prints one line per run, then per size the medians and the jvhost/dpdk ratio. Needs root (netns, TAP).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=bench-net
source scripts/lib/testpmd.sh
bench_options "$@"

TAP=jvbtap0
work=$(mktemp -d /tmp/jvbench-net.XXXXXX)
results=$work/results
ns=jvt-bench-$$
pids=()
trap 'bench_kill_all; ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"' EXIT

tap_rx() { ip netns exec "$ns" cat "/sys/class/net/$TAP/statistics/rx_packets"; }

start_backend() {  # start_backend NAME SOCK LOG -> sets be_pid; the TAP exists and is up afterwards
  local name=$1 sock=$2 log=$3
  case "$name" in
    jvhost)
      ip netns exec "$ns" "${ON_BE[@]}" java ${JVHOST_JAVA_OPTS:-} -jar "$jar" serve --device "net:socket=$sock,tap=$TAP$devopts" \
        > "$log" 2>&1 < /dev/null &
      ;;
    dpdk)
      # Non-interactive: forwarding starts at once; testpmd then waits on stdin, a fifo we hold open (fd 4).
      mkfifo "$sock.in"
      ip netns exec "$ns" "${ON_BE[@]}" stdbuf -oL dpdk-testpmd --lcores "0@$BE_CPU,1@$BE_CPU" --no-pci \
        --no-huge -m 256 --file-prefix "jvbench-be-$$" --vdev "net_vhost0,iface=$sock,queues=1" \
        --vdev "net_tap0,iface=$TAP" -- --forward-mode=io --disable-link-check --total-num-mbufs=16384 \
        < "$sock.in" > "$log" 2>&1 &
      exec 4> "$sock.in"
      ;;
  esac
  backend_started "$name" "$sock" "$log"
  wait_for 10 ip netns exec "$ns" test -e "/sys/class/net/$TAP" || bench_fail "$name made no $TAP"
  ip netns exec "$ns" ip link set "$TAP" up
}

run_once() {  # run_once BACKEND SIZE -> appends "BACKEND SIZE MPPS" to $results
  local name=$1 size=$2 dir sock be_log fe_log
  dir=$(mktemp -d "$work/run.XXXX"); sock=$dir/vhost.sock be_log=$dir/backend.log fe_log=$dir/testpmd.log
  ip netns add "$ns"
  start_backend "$name" "$sock" "$be_log"
  fe_start "$sock" "$dir" "$fe_log" txonly
  fe_traffic "$size" start
  measure tap_rx
  stop_peers "$name"
  ip netns del "$ns"
  local rate
  rate=$(mpps "$s0" "$s1" "$t0" "$t1")
  printf '%-7s %5s B  round %d  TAP rx %7s Mpps\n' "$name" "$size" "$round" "$rate"
  echo "$name $size $rate" >> "$results"
}

echo "# bench-net: $rounds rounds x ${seconds} s, sizes: $sizes, back-ends: $backends (CPU $BE_CPU), front-end testpmd txonly (CPU $FE_CPU), TAP in netns $ns"
echo "# kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg), nice $BENCH_NICE, $(date -u +%Y-%m-%dT%H:%MZ)"
bench_rounds
bench_medians "frames the TAP received per second"
