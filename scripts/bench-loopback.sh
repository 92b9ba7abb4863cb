#!/usr/bin/env bash
# Round-trip throughput of a vhost-user reflector, measured by DPDK testpmd's virtio_user front-end in
# `io` mode (`start tx_first 4`: 128 frames circulate front-end -> back-end -> front-end; ring 256,
# burst 32, 1 queue pair, --no-huge). Compares, interleaved so machine noise hits both alike:
#   jvhost : java -jar jvhost.jar serve --device loopback:socket=SOCK   (pinned to CPU 1)
#   dpdk   : dpdk-testpmd net_vhost + macswap forwarder                  (pinned to CPU 1)
# with the front-end on CPU 0. Rate = frames received back by the front-end per second (Mpps),
# from `show port stats all` before and after a timed interval, after a warm-up of 5 s (-w): jvhost's JIT
# compiles the frame path's largest methods (Worker.turn, then the OSR of Worker.loop) 1-7 s into the
# traffic, on the back-end's CPU; after a 1 s warm-up its C2 thread still ran 100-650 ms of each 5 s
# window (BENCHMARKS.md, issue 11, eighth session). The steady state is what an operator's host runs in.
#
# Usage: scripts/bench-loopback.sh [-r ROUNDS] [-d SECONDS] [-w WARMUP-SECONDS] [-s "64 1500"] [--skip-jvhost] [--jar PATH] [-o DEVICE-OPTIONS] [--packed] [--no-in-order] [--pin-worker] [--fe-cycles] [--rtt] [--jar-b PATH] [-i SECONDS]
# (--packed: virtio_user asks for packed rings, packed_vq=1, against both back-ends. --no-in-order:
# virtio_user does not ack VIRTIO_F_IN_ORDER, in_order=0; each run line says whether the back-end
# negotiated it, from its log. --pin-worker: only
# jvhost's worker threads on CPU 1, its other threads on the front-end's CPU 0: an experiment, not a
# fair comparison. --fe-cycles: testpmd's record-core-cycles on the front-end, its busy cycles per frame
# printed with each run. --rtt: scripts/cacheline-rtt.sh's median between CPUs 0 and 1 right before and
# right after each run, with both idle: where the host placed the two vCPUs, about 140 ns or about 600 ns
# on the machines of issue 11, flipping within seconds, and the rate of a round follows it. --jar-b PATH:
# a second jvhost build, run as "jvhostb" in every round beside --jar's and DPDK, order rotating; the
# medians add jvhostb/dpdk and jvhostb/jvhost. Two builds in separate runs minutes apart differed by
# more than a change's effect on this 2-CPU VM (BENCHMARKS.md, issue 15, eighth session). -i SECONDS:
# the rate is also read every SECONDS of each round's interval (-d must be a multiple); the run lines list
# the samples, and a last section parts each back-end's samples into a slow and a fast state and gives
# jvhost's ratio to DPDK within each: the host's placement of the two vCPUs halves or doubles DPDK's rate as
# much as jvhost's, within one process (BENCHMARKS.md, issue 11, ninth session).)
# Prints one line per run (with the steal time of both CPUs, the back-end's busiest thread's run-queue wait
# and its other threads' CPU time during the interval: a round slowed by the hypervisor or by another task
# of this VM says so), then per size the
# medians and the jvhost/dpdk ratio, and each back-end's spread (slowest and fastest round). Needs root for DPDK.
# JVHOST_JAVA_OPTS (environment): extra JVM options for jvhost, e.g. a profiler agent; JVHOST_JAVA_OPTS_B:
# those of --jar-b's jvhost if set (same as JVHOST_JAVA_OPTS if not), so that one jar with two option
# sets runs side by side in every round; JVHOST_SERVE_OPTS:
# extra `serve` options, e.g. --poll-us 1000; BENCH_NICE: the nice value of all peers (scripts/lib/testpmd.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=bench-loopback
source scripts/lib/testpmd.sh
bench_options "$@"

work=$(mktemp -d /tmp/jvbench.XXXXXX)
results=$work/results samples=$work/samples
: > "$samples"
pids=()
trap 'bench_kill_all; rm -rf "$work"' EXIT

start_backend() {  # start_backend NAME SOCK LOG -> sets be_pid
  local name=$1 sock=$2 log=$3
  case "$name" in
    jvhost|jvhostb)
      local opts=${JVHOST_JAVA_OPTS:-} jarfile=$jar
      [[ $name == jvhostb ]] && opts=${JVHOST_JAVA_OPTS_B-$opts} jarfile=$jar_b
      "${ON_BE[@]}" java $opts -jar "$jarfile" serve ${JVHOST_SERVE_OPTS:-} --device "loopback:socket=$sock$devopts" > "$log" 2>&1 < /dev/null &
      ;;
    dpdk)
      # Non-interactive: forwarding starts at once; testpmd then waits on stdin, a fifo we hold open (fd 4).
      mkfifo "$sock.in"
      "${ON_BE[@]}" stdbuf -oL dpdk-testpmd --lcores "0@$BE_CPU,1@$BE_CPU" --no-pci --no-huge -m 256 \
        --file-prefix "jvbench-be-$$" --vdev "net_vhost0,iface=$sock,queues=1" -- \
        --port-topology=loop --forward-mode=macswap --disable-link-check --total-num-mbufs=16384 < "$sock.in" > "$log" 2>&1 &
      exec 4> "$sock.in"
      ;;
  esac
  backend_started "$name" "$sock" "$log"
}

# fe_cycles_per_packet LOG: testpmd's own busy cycles per forwarded frame on the front-end's core since
# the last `clear fwd stats all` (record-core-cycles counts only polls that received frames, so a front-end
# that waits for a slow back-end shows the same figure, and one whose own ring accesses got dearer a
# higher one).
fe_cycles_per_packet() {
  local log=$1 before
  before=$(grep -c 'CPU cycles/packet' "$log" || true)
  fe_cmd "show fwd stats all"
  wait_for 10 sh -c "[ \$(grep -c 'CPU cycles/packet' '$log') -gt $before ]" || { echo "n/a"; return; }
  grep 'CPU cycles/packet' "$log" | tail -1 | sed -E 's/.*CPU cycles\/packet=([0-9.]+).*/\1/'
}

# in_order_of NAME LOG: "in-order" if the back-end's log shows VIRTIO_F_IN_ORDER (bit 35) negotiated
# (jvhost names in-order rings when they start; DPDK's vhost library logs the negotiated features).
in_order_of() {
  local name=$1 log=$2 hex
  if [[ $name == jvhost* ]]; then
    if grep -q 'used in order' "$log"; then echo in-order; else echo not-in-order; fi
    return
  fi
  hex=$(grep -o 'negotiated Virtio features: 0x[0-9a-f]*' "$log" | tail -1 | sed 's/.*0x//')
  if [[ -z $hex ]]; then echo in-order-unknown; elif (( (0x$hex >> 35) & 1 )); then echo in-order; else echo not-in-order; fi
}

# cpu_times: "total0 steal0 total1 steal1", jiffies of CPUs 0 and 1 from /proc/stat (steal: time the
# hypervisor ran something else on the vCPU). steal_since BEFORE: "steal cpu0 x% cpu1 y%" since then.
cpu_times() { awk '$1 == "cpu0" || $1 == "cpu1" { t = 0; for (i = 2; i <= 9; i++) t += $i; printf "%d %d ", t, $9 }' /proc/stat; }
steal_since() {
  local now
  now=$(cpu_times)
  awk -v a="$1" -v b="$now" 'BEGIN { split(a, x); split(b, y)
    printf "steal cpu0 %.1f%% cpu1 %.1f%%", 100 * (y[2] - x[2]) / (y[1] - x[1] + 1e-9), 100 * (y[4] - x[4]) / (y[3] - x[3] + 1e-9) }'
}

# thread_times PID: per thread of process PID, "TID COMM ON-CPU-NS RUN-QUEUE-WAIT-NS" (schedstat).
# busiest_since PID BEFORE: for the thread that ran most since BEFORE (the worker, DPDK's lcore), how
# long it waited runnable for the CPU while another task of this VM ran, and how long the process's other
# threads ran (on the back-end's CPU: JIT, GC, control), naming the two that ran most.
# One awk for all threads: a cat and a basename per thread (the earlier form) forked about 60 processes
# per sample for a JVM's 20 threads against DPDK's 3, and they ran on the back-end's CPU (perf sched).
thread_times() {
  local t files=()
  for t in /proc/"$1"/task/*; do files+=("$t/comm" "$t/schedstat"); done
  awk 'FILENAME ~ /comm$/ { c = $0; gsub(/ /, "_", c); next }
       { n = split(FILENAME, p, "/"); print p[n - 1], c, $0 }' "${files[@]}" 2>/dev/null || true
}
busiest_since() {
  thread_times "$1" | awk -v before="$2" 'BEGIN { n = split(before, b, "\n"); for (i = 1; i <= n; i++) { split(b[i], f, " "); r[f[1]] = f[3]; w[f[1]] = f[4] } }
    NF >= 4 { run = $3 - r[$1]; wait = $4 - w[$1]; total += run; ran[NR] = run; who[NR] = $2
              if (run > best) { best = run; name = $2; bw = wait; bi = NR } }
    END { printf "%s waited %d ms for the CPU, other threads ran %d ms", name, bw / 1e6, (total - best) / 1e6
          # the two others that ran most, when they ran at least 10 ms (a JIT compiler, GC, the control loop)
          for (k = 0; k < 2; k++) { m = 0; mi = 0
            for (i in ran) if (i != bi && ran[i] > m) { m = ran[i]; mi = i }
            if (m < 1e7) break
            printf "%s%s %d", (k == 0 ? " (" : ", "), who[mi], m / 1e6; delete ran[mi] }
          if (k > 0) printf ")" }'
}

# line_rtt_ns: the median cache-line round trip between the two CPUs now (5,000 per batch: about 0.1 s).
line_rtt_ns() {
  scripts/cacheline-rtt.sh 0 1 5000 | sed -E 's/.*median ([0-9]+).*/\1/'
}

# measure_samples NAME SIZE: as `measure fe_stats` (sets t0 s0 t1 s1 over the whole interval), reading
# the front-end's counters every $interval s (-i) too, each sample's rate appended to $samples as "NAME SIZE
# ROUND MPPS". The host moves the two vCPUs between placements that halve or double both back-ends' rates
# within one process, every few seconds to every minute (BENCHMARKS.md, issue 11, ninth session); a
# round's samples show which states it ran in.
measure_samples() {
  local name=$1 size=$2 k ta sa tb sb
  t0=$(date +%s.%N); s0=$(fe_stats "$fe_log")
  ta=$t0 sa=$s0
  for ((k = 0; k < seconds / interval; k++)); do
    sleep "$interval"
    tb=$(date +%s.%N); sb=$(fe_stats "$fe_log")
    echo "$name $size $round $(mpps "${sa%% *}" "${sb%% *}" "$ta" "$tb")" >> "$samples"
    ta=$tb sa=$sb
  done
  t1=$ta s1=$sa
}

# states_of NAME SIZE: "SLOW N FAST M" (medians and counts) of NAME's samples at SIZE: the two groups of
# its sorted samples that differ least within themselves (the cut with the least sum of squared
# deviations of their logarithms from their group's mean), if their medians are at least 1.3x apart;
# "MEDIAN N -" (all samples) when they are not, "n/a 0 -" when there are none.
states_of() {
  awk -v n="$1" -v s="$2" '$1 == n && $2 == s && $4 > 0 { print $4 }' "$samples" | sort -g | awk '
    function med(a, b,  m) { m = b - a + 1; return (m % 2) ? v[a + (m - 1) / 2] : sprintf("%.3f", (v[a + m / 2 - 1] + v[a + m / 2]) / 2) }
    function sse(a, b,  i, m, t) { m = 0; for (i = a; i <= b; i++) m += l[i]; m /= b - a + 1
                                   t = 0; for (i = a; i <= b; i++) t += (l[i] - m) ^ 2; return t }
    { v[NR] = $1; l[NR] = log($1) }
    END {
      if (NR == 0) { print "n/a 0 -"; exit }
      cut = 0
      for (i = 1; i < NR; i++) { t = sse(1, i) + sse(i + 1, NR); if (cut == 0 || t < best) { best = t; cut = i } }
      if (cut == 0 || med(cut + 1, NR) + 0 < 1.3 * med(1, cut)) print med(1, NR), NR, "-"
      else print med(1, cut), cut, med(cut + 1, NR), NR - cut
    }'
}

# bench_states: per size and back-end, the samples' slow and fast state (median, count), and jvhost's
# ratio to DPDK within each state both ran in: what the code does at a given placement, which the
# rounds' medians and spread mix with how many rounds each back-end spent in which state.
bench_states() {
  local size name line ratios slow_dpdk fast_dpdk a na b nb
  echo "# states (median Mpps of the ${interval} s samples in each, and how many; two groups, if their medians are >= 1.3x apart)"
  for size in $sizes; do
    read -r slow_dpdk _ fast_dpdk _ <<< "$(states_of dpdk "$size")"
    line="size $size B:" ratios=""
    for name in $backends; do
      read -r a na b nb <<< "$(states_of "$name" "$size")"
      if [[ $na == 0 ]]; then line="$line $name no samples"
      elif [[ $b == - ]]; then line="$line $name one state $a ($na)"
      else line="$line $name slow $a ($na) fast $b ($nb)"; fi
      line="$line;"
      if [[ $name != dpdk && $b != - && -n ${fast_dpdk:-} && $fast_dpdk != - ]]; then
        ratios="$ratios  $name/dpdk slow $(ratio "$a" "$slow_dpdk") fast $(ratio "$b" "$fast_dpdk")"
      fi
    done
    echo "${line%;}"
    if [[ -n $ratios ]]; then echo "size $size B, within a state:$ratios"; fi
  done
}

run_once() {  # run_once BACKEND SIZE -> appends "BACKEND SIZE MPPS" to $results
  local name=$1 size=$2 dir sock be_log fe_log rtt=""
  dir=$(mktemp -d "$work/run.XXXX"); sock=$dir/vhost.sock be_log=$dir/backend.log fe_log=$dir/testpmd.log
  if [[ $line_rtt -eq 1 ]]; then rtt="  line rtt $(line_rtt_ns)"; fi
  start_backend "$name" "$sock" "$be_log"
  if [[ $pin_worker -eq 1 && $name == jvhost* ]]; then pin_jvhost_workers "$be_pid"; fi
  fe_start "$sock" "$dir" "$fe_log" io
  if [[ $fe_cycles -eq 1 ]]; then fe_cmd "set record-core-cycles on"; fi
  fe_traffic "$size" start tx_first 4
  if [[ $fe_cycles -eq 1 ]]; then fe_cmd "clear fwd stats all"; fi
  local cpu0 steal threads0
  cpu0=$(cpu_times); threads0=$(thread_times "$be_pid")
  if [[ $interval -gt 0 ]]; then measure_samples "$name" "$size"; else measure fe_stats "$fe_log"; fi
  steal="$(steal_since "$cpu0"), $(busiest_since "$be_pid" "$threads0")"
  local cycles=""
  if [[ $fe_cycles -eq 1 ]]; then cycles="  front-end $(fe_cycles_per_packet "$fe_log") cycles/frame"; fi
  stop_peers "$name"
  if [[ $line_rtt -eq 1 ]]; then rtt="$rtt/$(line_rtt_ns) ns"; fi
  local order
  order=$(in_order_of "$name" "$be_log")
  read -r rx0 tx0 <<< "$s0"; read -r rx1 tx1 <<< "$s1"
  local rx tx
  rx=$(mpps "$rx0" "$rx1" "$t0" "$t1")
  tx=$(mpps "$tx0" "$tx1" "$t0" "$t1")
  local each=""
  if [[ $interval -gt 0 ]]; then each="  every ${interval} s: $(awk -v n="$name" -v s="$size" -v r="$round" '$1 == n && $2 == s && $3 == r { printf " %s", $4 }' "$samples")"; fi
  printf '%-7s %5s B  round %d  rx %7s Mpps  tx %7s Mpps  %s  %s%s%s%s\n' "$name" "$size" "$round" "$rx" "$tx" "$order" "$steal" "$cycles" "$rtt" "$each"
  echo "$name $size $rx" >> "$results"
}

echo "# bench-loopback: $rounds rounds x ${seconds} s, sizes: $sizes, back-ends: $backends (CPU $BE_CPU), front-end testpmd io (CPU $FE_CPU)"
echo "# kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg), nice $BENCH_NICE, $(date -u +%Y-%m-%dT%H:%MZ)"
bench_rounds
bench_medians "frames returned to the front-end per second"
if [[ $interval -gt 0 ]]; then bench_states; fi
