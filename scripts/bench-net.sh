#!/usr/bin/env bash
# Throughput of a vhost-user net back-end between DPDK testpmd's virtio_user front-end (ring 256, burst
# 32, 1 queue pair, --no-huge) and a TAP in a network namespace of this script's own, in one direction:
#   TX (default): the front-end sends in `txonly`; the back-end writes every frame into the TAP.
#       Rate = the TAP's rx_packets (frames the kernel took from the back-end) per second.
#   RX (--rx): scripts/lib/tapgen.c sends frames into the TAP from an AF_PACKET socket in the namespace;
#       the back-end reads them from the TAP into the front-end's buffers; the front-end counts in
#       `rxonly`. Rate = the front-end's RX-packets per second (frames that reached the guest side).
# Compares, interleaved so machine noise hits both alike:
#   jvhost : ip netns exec NS java -jar jvhost.jar serve --device net:socket=SOCK,tap=jvbtap0   (CPU 1)
#   dpdk   : ip netns exec NS dpdk-testpmd --vdev net_vhost0,iface=SOCK --vdev net_tap0,iface=jvbtap0
#            --forward-mode=io (vhost -> TAP and TAP -> vhost)                               (CPU 1)
# with the front-end on CPU 0, over a timed interval after a 1 s warm-up. jvhost writes to the TAP through
# io_uring by default (uring=auto); `-o uring=off` measures its one-writev-per-frame path. Each jvhost run
# prints the TAP data path jvhost logged (io_uring or one system call per frame).
#
# The RX generator, and why it is placed as it is. The machine has two CPUs, and all three parties want
# one: the back-end has CPU 1 to itself (as in TX); the generator shares CPU 0 with the front-end. The
# kernel has no pktgen here, and a busy-polling generator (a second testpmd) would take half of CPU 0 in
# scheduler slices of milliseconds, in which the front-end (busy-polling too) would not run and its ring
# of 256 buffers (under 0.2 ms of traffic at 1.5 Mpps) would run dry: the back-end would be measured
# waiting for buffers. So tapgen paces itself: a burst of 32 frames with one sendmmsg
# (PACKET_QDISC_BYPASS: straight into the TAP's queue, no qdisc), then a sleep until the next burst is
# due, at a fixed offered rate (-g, default 3 Mpps, above what either back-end takes): the front-end runs
# between bursts, every few microseconds, and keeps its ring full. The offered rate only has to exceed
# what the back-end takes; the TAP drops the rest when its queue (txqueuelen 1000) is full. Each run
# prints what tapgen sent and the TAP's tx_dropped, so a run in which the generator fell short of the
# back-end (no drops) shows itself.
#
# Usage: scripts/bench-net.sh [--rx] [-g MPPS] [-r ROUNDS] [-d SECONDS] [-s "64 1500"] [--skip-jvhost] [--jar PATH] [-o DEVICE-OPTIONS]
# JVHOST_JAVA_OPTS (environment): extra JVM options for jvhost, e.g. a profiler agent.
# Prints one line per run, then per size the medians and the jvhost/dpdk ratio. Needs root (netns, TAP),
# and gcc for --rx (tapgen is compiled into the script's temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=bench-net
source scripts/lib/testpmd.sh
direction=tx gen_mpps=3 args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rx) direction=rx; shift ;;
    -g) gen_mpps=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
bench_options ${args[@]+"${args[@]}"}

TAP=jvbtap0
work=$(mktemp -d /tmp/jvbench-net.XXXXXX)
results=$work/results
ns=jvt-bench-$$
pids=()
trap 'bench_kill_all; ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"' EXIT
if [[ $direction == rx ]]; then
  command -v gcc >/dev/null || bench_fail "gcc missing: --rx compiles scripts/lib/tapgen.c"
  gcc -O2 -o "$work/tapgen" scripts/lib/tapgen.c
fi

tap_stat() { ip netns exec "$ns" cat "/sys/class/net/$TAP/statistics/$1"; }
tap_rx() { tap_stat rx_packets; }

# What jvhost logged about its TAP data path (io_uring or one system call per frame), one line.
tap_path() {
  grep -o 'TAP [^ ]*: .*[TR]X .*' "$1" | sed 's/^TAP [^ ]*: //' | paste -sd ';' | cut -c1-160
}

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
  local name=$1 size=$2 dir sock be_log fe_log rate
  dir=$(mktemp -d "$work/run.XXXX"); sock=$dir/vhost.sock be_log=$dir/backend.log fe_log=$dir/testpmd.log
  ip netns add "$ns"
  start_backend "$name" "$sock" "$be_log"
  if [[ $direction == tx ]]; then
    fe_start "$sock" "$dir" "$fe_log" txonly
    fe_traffic "$size" start
    measure tap_rx
    rate=$(mpps "$s0" "$s1" "$t0" "$t1")
    extra=""
  else
    fe_start "$sock" "$dir" "$fe_log" rxonly
    fe_cmd start
    # the generator runs through warm-up, measurement and a margin; on the front-end's CPU (header)
    ip netns exec "$ns" "${ON_FE[@]}" "$work/tapgen" "$TAP" "$size" $((seconds + 3)) "$gen_mpps" > "$dir/gen.log" 2>&1 &
    gen_pid=$!
    pids+=("$gen_pid")
    sleep 1
    local d0 d1
    d0=$(tap_stat tx_dropped)
    measure fe_stats "$fe_log"
    d1=$(tap_stat tx_dropped)
    wait "$gen_pid" || true
    local rx0 rx1 tx_
    read -r rx0 tx_ <<< "$s0"; read -r rx1 tx_ <<< "$s1"
    rate=$(mpps "$rx0" "$rx1" "$t0" "$t1")
    extra="  TAP dropped $(mpps "$d0" "$d1" "$t0" "$t1") Mpps  tapgen $(cat "$dir/gen.log")"
  fi
  stop_peers "$name"
  ip netns del "$ns"
  if [[ $name == jvhost ]]; then extra="$extra  [$(tap_path "$be_log")]"; fi
  printf '%-7s %5s B  round %d  %s %7s Mpps%s\n' "$name" "$size" "$round" \
    "$([[ $direction == tx ]] && echo 'TAP rx' || echo 'guest rx')" "$rate" "$extra"
  echo "$name $size $rate" >> "$results"
}

if [[ $direction == tx ]]; then
  echo "# bench-net TX (guest to TAP): $rounds rounds x ${seconds} s, sizes: $sizes, back-ends: $backends (CPU $BE_CPU), front-end testpmd txonly (CPU $FE_CPU), TAP in netns $ns"
else
  echo "# bench-net RX (TAP to guest): $rounds rounds x ${seconds} s, sizes: $sizes, back-ends: $backends (CPU $BE_CPU), front-end testpmd rxonly and tapgen at $gen_mpps Mpps (CPU $FE_CPU), TAP in netns $ns"
fi
echo "# kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg), nice $BENCH_NICE, $(date -u +%Y-%m-%dT%H:%MZ)"
bench_rounds
bench_medians "$([[ $direction == tx ]] && echo 'frames the TAP received' || echo 'frames the front-end received') per second"
