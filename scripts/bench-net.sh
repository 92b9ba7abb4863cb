#!/usr/bin/env bash
# Guest-to-TAP throughput of a vhost-user net back-end: DPDK testpmd's virtio_user front-end sends in
# `txonly` mode (ring 256, burst 32, 1 queue pair, --no-huge) and the back-end writes every frame to a
# TAP in a network namespace of this script's own. Compares, interleaved so machine noise hits both alike:
#   jvhost : ip netns exec NS java -jar jvhost.jar serve --device net:socket=SOCK,tap=jvbtap0   (CPU 1)
#   dpdk   : ip netns exec NS dpdk-testpmd --vdev net_vhost0,iface=SOCK --vdev net_tap0,iface=jvbtap0
#            --forward-mode=io (port 0 -> port 1: vhost -> TAP)                                  (CPU 1)
# with the front-end on CPU 0. Rate = the TAP's rx_packets in the namespace (frames the kernel took from
# the back-end) per second, over a timed interval after a 1 s warm-up.
#
# Usage: scripts/bench-net.sh [-r ROUNDS] [-d SECONDS] [-s "64 1500"] [--skip-jvhost] [--jar PATH]
# Prints one line per run, then per size the medians and the jvhost/dpdk ratio. Needs root (netns, TAP).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=5 seconds=5 sizes="64 1500" skip_jvhost=0 jar=host/target/jvhost.jar
while [[ $# -gt 0 ]]; do
  case "$1" in
    -r) rounds=$2; shift 2 ;;
    -d) seconds=$2; shift 2 ;;
    -s) sizes=$2; shift 2 ;;
    --skip-jvhost) skip_jvhost=1; shift ;;
    --jar) jar=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "bench-net: unknown argument $1" >&2; exit 2 ;;
  esac
done
backends="jvhost dpdk"
if [[ $skip_jvhost -eq 1 ]]; then
  backends="dpdk"
elif [[ ! -f "$jar" ]]; then
  echo "bench-net: $jar not found (build with: mvn -B -DskipTests package), or pass --skip-jvhost" >&2
  exit 1
fi
command -v dpdk-testpmd >/dev/null || { echo "bench-net: dpdk-testpmd missing (scripts/install-deps.sh)" >&2; exit 1; }

FE_CPU=0 BE_CPU=1 TAP=jvbtap0
work=$(mktemp -d /tmp/jvbench-net.XXXXXX)
results=$work/results
ns=jvt-bench-$$
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  sleep 0.5
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_for() {  # wait_for SECONDS COMMAND...: polls COMMAND every 0.1 s
  local limit=$(( $1 * 10 )); shift
  for ((i = 0; i < limit; i++)); do "$@" && return 0; sleep 0.1; done
  return 1
}

tap_rx() { ip netns exec "$ns" cat "/sys/class/net/$TAP/statistics/rx_packets"; }

start_backend() {  # start_backend NAME SOCK LOG -> sets be_pid; the TAP exists and is up afterwards
  local name=$1 sock=$2 log=$3
  case "$name" in
    jvhost)
      ip netns exec "$ns" taskset -c "$BE_CPU" java -jar "$jar" serve --device "net:socket=$sock,tap=$TAP" \
        > "$log" 2>&1 < /dev/null &
      ;;
    dpdk)
      # Non-interactive: forwarding starts at once; testpmd then waits on stdin, a fifo we hold open (fd 4).
      mkfifo "$sock.in"
      ip netns exec "$ns" taskset -c "$BE_CPU" stdbuf -oL dpdk-testpmd --lcores "0@$BE_CPU,1@$BE_CPU" --no-pci \
        --no-huge -m 256 --file-prefix "jvbench-be-$$" --vdev "net_vhost0,iface=$sock,queues=1" \
        --vdev "net_tap0,iface=$TAP" -- --forward-mode=io --disable-link-check --total-num-mbufs=16384 \
        < "$sock.in" > "$log" 2>&1 &
      exec 4> "$sock.in"
      ;;
  esac
  be_pid=$!
  pids+=("$be_pid")
  wait_for 30 sh -c "test -S '$sock' || ! kill -0 $be_pid 2>/dev/null"
  test -S "$sock" || { echo "bench-net: $name did not create $sock; log:" >&2; tail -20 "$log" >&2; exit 1; }
  wait_for 10 ip netns exec "$ns" test -e "/sys/class/net/$TAP" || { echo "bench-net: $name made no $TAP" >&2; exit 1; }
  ip netns exec "$ns" ip link set "$TAP" up
}

fe_cmd() { echo "$1" >&3; }

run_once() {  # run_once BACKEND SIZE -> appends "BACKEND SIZE MPPS" to $results
  local name=$1 size=$2 dir sock be_log fe_log
  dir=$(mktemp -d "$work/run.XXXX"); sock=$dir/vhost.sock be_log=$dir/backend.log fe_log=$dir/testpmd.log
  ip netns add "$ns"
  start_backend "$name" "$sock" "$be_log"
  mkfifo "$dir/fe.in"
  taskset -c "$FE_CPU" stdbuf -oL dpdk-testpmd --lcores "0@$FE_CPU,1@$FE_CPU" --no-pci --no-huge -m 256 \
    --file-prefix "jvbench-fe-$$" --vdev "virtio_user0,path=$sock,queues=1,queue_size=256" -- \
    -i --port-topology=loop --forward-mode=txonly --burst=32 --total-num-mbufs=16384 < "$dir/fe.in" > "$fe_log" 2>&1 &
  local fe_pid=$!
  pids+=("$fe_pid")
  exec 3> "$dir/fe.in"
  wait_for 30 grep -q 'testpmd> ' "$fe_log" || { echo "bench-net: front-end did not start; log:" >&2; tail -20 "$fe_log" >&2; exit 1; }
  [[ "$size" != 64 ]] && fe_cmd "set txpkts $size"
  fe_cmd "start"
  sleep 1
  local t0 t1 r0 r1
  t0=$(date +%s.%N); r0=$(tap_rx)
  sleep "$seconds"
  t1=$(date +%s.%N); r1=$(tap_rx)
  fe_cmd "stop"; fe_cmd "quit"
  exec 3>&-
  wait_for 10 sh -c "! kill -0 $fe_pid 2>/dev/null" || kill -9 "$fe_pid" 2>/dev/null || true
  kill "$be_pid" 2>/dev/null || true
  wait_for 10 sh -c "! kill -0 $be_pid 2>/dev/null" || kill -9 "$be_pid" 2>/dev/null || true
  [[ "$name" == dpdk ]] && exec 4>&-
  wait "$fe_pid" "$be_pid" 2>/dev/null || true
  ip netns del "$ns"
  local mpps
  mpps=$(awk -v a="$r0" -v b="$r1" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.3f", (b - a) / (t1 - t0) / 1e6 }')
  printf '%-7s %5s B  round %d  TAP rx %7s Mpps\n' "$name" "$size" "$round" "$mpps"
  echo "$name $size $mpps" >> "$results"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "# bench-net: $rounds rounds x ${seconds} s, sizes: $sizes, back-ends: $backends (CPU $BE_CPU), front-end testpmd txonly (CPU $FE_CPU), TAP in netns $ns"
: > "$results"
for ((round = 1; round <= rounds; round++)); do
  for size in $sizes; do
    order=$backends
    [[ $((round % 2)) -eq 0 ]] && order=$(echo "$backends" | tr ' ' '\n' | tac | tr '\n' ' ')
    for name in $order; do run_once "$name" "$size"; done
  done
done

echo "# medians (Mpps, frames the TAP received per second)"
for size in $sizes; do
  line="size $size B:"
  for name in $backends; do
    m=$(awk -v n="$name" -v s="$size" '$1 == n && $2 == s { print $3 }' "$results" | median)
    line="$line $name $m"
    eval "med_$name=$m"
  done
  if [[ $skip_jvhost -eq 0 ]]; then
    line="$line  ratio jvhost/dpdk $(awk -v a="$med_jvhost" -v b="$med_dpdk" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')"
  fi
  echo "$line"
done
