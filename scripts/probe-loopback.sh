#!/usr/bin/env bash
# One jvhost loopback run under DPDK testpmd's virtio_user (io mode, `start tx_first 4`, as
# bench-loopback.sh), reporting per second: the round-trip rate, and for the thread that serves the queues
# (the busiest jvhost-worker) its voluntary and involuntary context switches and its CPU ticks (user,
# system; 100 per second is one whole CPU), and each CPU's steal ticks (the hypervisor ran another
# vCPU). It tells a slow second in which the worker is busy (per-frame cost) from one in which it is off
# the CPU (scheduling, wake-ups). Then samples every worker's state
# and wait channel 200 times over 2 s, and (if `perf` is installed) records 2 s of scheduler events on
# both CPUs: per task its run time, context switches and scheduling delays (`perf sched latency`), which
# names whatever holds the back-end's CPU while the worker is off it.
#
# Usage: scripts/probe-loopback.sh [-s SIZE] [-d SECONDS] [-p POLL_US] [--jar PATH]
#   -p: jvhost serve --poll-us (default 50); JVHOST_JAVA_OPTS (environment): extra JVM options;
#   JVHOST_SERVE_OPTS: extra serve options (e.g. --poll-max-us 50); BENCH_NICE: see scripts/lib/testpmd.sh
# Run it under /work/bin/bench-lock (or alone): it needs root for DPDK, CPU 0 and CPU 1.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=probe-loopback
source scripts/lib/testpmd.sh
size=64 secs=10 poll=50 jar=host/target/jvhost.jar fevdev=""  # fevdev: split rings (fe_start reads it)
while [[ $# -gt 0 ]]; do
  case "$1" in
    -s) size=$2; shift 2 ;;
    -d) secs=$2; shift 2 ;;
    -p) poll=$2; shift 2 ;;
    --jar) jar=$2; shift 2 ;;
    *) echo "$BENCH: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -f "$jar" ]] || bench_fail "$jar not found (build with: mvn -B -DskipTests package)"
work=$(mktemp -d /tmp/jvprobe.XXXXXX)
pids=()
trap 'bench_kill_all; rm -rf "$work"' EXIT
sock=$work/vhost.sock
"${ON_BE[@]}" java ${JVHOST_JAVA_OPTS:-} -jar "$jar" serve --poll-us "$poll" ${JVHOST_SERVE_OPTS:-} --device "loopback:socket=$sock" \
  > "$work/be.log" 2>&1 < /dev/null &
backend_started jvhost "$sock" "$work/be.log"
fe_start "$sock" "$work" "$work/fe.log" io
fe_traffic "$size" start tx_first 4

rx_packets() {
  local before; before=$(grep -c 'Tx-pps' "$work/fe.log" || true)
  fe_cmd "show port stats all"
  wait_for 10 sh -c "[ \$(grep -c 'Tx-pps' '$work/fe.log') -gt $before ]" || bench_fail "no stats from testpmd"
  awk '/NIC statistics for port 0/ { rx = "" } /RX-packets:/ && rx == "" { rx = $2 } END { print rx }' "$work/fe.log"
}
busiest_worker() {  # the jvhost-worker thread with the most CPU ticks so far
  # `if`, not `grep && echo`: a last thread that is no worker would end the loop with status 1, which
  # pipefail and set -e turned into an exit of the whole script right after its header.
  for t in /proc/"$be_pid"/task/*; do
    if grep -q jvhost-worker "$t/comm"; then echo "$(awk '{print $14 + $15}' "$t/stat") $(basename "$t")"; fi
  done | sort -n | tail -1 | cut -d' ' -f2
}
steal() {  # steal ticks of CPU $1 so far: time the hypervisor ran something else on this vCPU
  awk -v cpu="cpu$1" '$1 == cpu {print $9}' /proc/stat
}
sched() {  # "VOLUNTARY INVOLUNTARY UTIME STIME" of thread $wtid
  echo "$(awk '/^voluntary_ctxt/ {v = $2} /^nonvoluntary_ctxt/ {n = $2} END {print v, n}' /proc/"$be_pid"/task/"$wtid"/status)" \
       "$(awk '{print $14, $15}' /proc/"$be_pid"/task/"$wtid"/stat)"
}

echo "# probe-loopback: $size B, ${secs} s, --poll-us $poll; kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg), nice $BENCH_NICE, $(date -u +%Y-%m-%dT%H:%MZ)"
wtid=$(busiest_worker)
[[ -n "$wtid" ]] || bench_fail "no jvhost-worker thread in process $be_pid"
p0=$(rx_packets); t0=$(date +%s.%N); read -r v0 n0 u0 s0 <<< "$(sched)"; fs0=$(steal "$FE_CPU"); bs0=$(steal "$BE_CPU")
for ((i = 1; i <= secs; i++)); do
  sleep 1
  p1=$(rx_packets); t1=$(date +%s.%N); read -r v1 n1 u1 s1 <<< "$(sched)"; fs1=$(steal "$FE_CPU"); bs1=$(steal "$BE_CPU")
  printf 'second %2d  %7s Mpps  worker: voluntary %5d  involuntary %5d  user %3d  system %3d ticks  steal: CPU %d %3d  CPU %d %3d\n' \
    "$i" "$(mpps "$p0" "$p1" "$t0" "$t1")" $((v1 - v0)) $((n1 - n0)) $((u1 - u0)) $((s1 - s0)) \
    "$FE_CPU" $((fs1 - fs0)) "$BE_CPU" $((bs1 - bs0))
  p0=$p1 t0=$t1 v0=$v1 n0=$n1 u0=$u1 s0=$s1 fs0=$fs1 bs0=$bs1
done
for t in /proc/"$be_pid"/task/*; do
  grep -q jvhost-worker "$t/comm" || continue
  echo "# $(cat "$t/comm"): state and wait channel, 200 samples over 2 s"
  for ((i = 0; i < 200; i++)); do echo "$(awk '{print $3}' "$t/stat") $(cat "$t/wchan")"; sleep 0.01; done | sort | uniq -c
done
echo "# threads of jvhost with CPU ticks in 2 s"
declare -A ticks
for t in /proc/"$be_pid"/task/*; do ticks[${t##*/}]=$(awk '{print $14 + $15}' "$t/stat"); done
sleep 2
for t in /proc/"$be_pid"/task/*; do
  d=$(( $(awk '{print $14 + $15}' "$t/stat") - ${ticks[${t##*/}]:-0} ))
  if [[ $d -gt 0 ]]; then echo "$(cat "$t/comm") $d"; fi
done
if command -v perf > /dev/null; then
  echo "# perf sched latency, 2 s on CPUs $FE_CPU and $BE_CPU, by run time"
  perf sched record -C "$FE_CPU,$BE_CPU" -o "$work/sched.data" -- sleep 2 > /dev/null 2>&1
  perf sched latency -i "$work/sched.data" -s runtime 2> /dev/null | head -16
fi
echo "# busiest threads on the machine (psr = CPU)"
ps -eLo psr,pcpu,comm,pid --sort=-pcpu | head -12
stop_peers jvhost
