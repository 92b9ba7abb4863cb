# Shared by scripts/bench-*.sh: options, clean-up, driving a DPDK testpmd virtio_user front-end, and the
# rounds/medians/ratio report. Each bench script keeps what differs: how its back-ends start and what it
# counts. Source it after setting BENCH (the name error messages start with); it defines functions only.
#
# The front-end runs interactively (`-i`) reading commands from a fifo held open on fd 3; a DPDK back-end
# runs non-interactively and waits on a fifo held open on fd 4 (closing it lets that testpmd exit).
# Process ids go into `pids` so that bench_kill_all can stop whatever an aborted run left behind.

FE_CPU=0 BE_CPU=1
# BENCH_NICE (environment, default 0): the nice value front-end and back-ends run at, e.g. -15 so that
# other jobs of a shared machine (builds at nice 0 or 10) cannot take their CPUs for long; both
# back-ends get the same, so the comparison stays fair. The bench scripts print it with the load.
BENCH_NICE=${BENCH_NICE:-0}
ON_FE=(nice -n "$BENCH_NICE" taskset -c "$FE_CPU")
ON_BE=(nice -n "$BENCH_NICE" taskset -c "$BE_CPU")

bench_fail() { echo "$BENCH: $*" >&2; exit 1; }

# bench_options ARGS...: sets rounds seconds warmup sizes skip_jvhost jar jar_b devopts fevdev backends; -h prints the
# script's header comment. devopts is "" or ",OPTIONS" (-o OPTIONS: more options for jvhost's device);
# fevdev is "" or holds ",packed_vq=1" (--packed: the front-end asks for packed rings, which both back-ends
# serve) and ",in_order=0" (--no-in-order: virtio_user does not ack VIRTIO_F_IN_ORDER, which it does by default);
# pin_worker is 1 with --pin-worker (see pin_jvhost_workers), fe_cycles 1 with --fe-cycles, line_rtt 1 with
# --rtt (bench-loopback). --jar-b PATH (bench-loopback): a second jvhost jar, run as back-end "jvhostb" in
# every round beside the first and DPDK, so that two builds are compared within one run. interval is 0, or
# with -i SECONDS (bench-loopback) the length of the samples each round's interval is read in.
bench_options() {
  rounds=5 seconds=5 warmup=5 sizes="64 1500" skip_jvhost=0 jar=host/target/jvhost.jar devopts="" fevdev="" pin_worker=0 fe_cycles=0 line_rtt=0 jar_b="" interval=0
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -r) rounds=$2; shift 2 ;;
      -d) seconds=$2; shift 2 ;;
      -w) warmup=$2; shift 2 ;;
      -s) sizes=$2; shift 2 ;;
      --skip-jvhost) skip_jvhost=1; shift ;;
      --jar) jar=$2; shift 2 ;;
      --jar-b) jar_b=$2; shift 2 ;;
      -i) interval=$2; shift 2 ;;
      -o) devopts=",$2"; shift 2 ;;
      --packed) fevdev="$fevdev,packed_vq=1"; shift ;;
      --no-in-order) fevdev="$fevdev,in_order=0"; shift ;;
      --pin-worker) pin_worker=1; shift ;;
      --fe-cycles) fe_cycles=1; shift ;;
      --rtt) line_rtt=1; shift ;;
      -h|--help) sed -n '2,/^[^#]/p' "$0" | sed '$d'; exit 0 ;;
      *) echo "$BENCH: unknown argument $1" >&2; exit 2 ;;
    esac
  done
  backends="jvhost dpdk"
  if [[ $skip_jvhost -eq 1 ]]; then
    backends="dpdk"
  elif [[ ! -f "$jar" ]]; then
    bench_fail "$jar not found (build with: mvn -B -DskipTests package), or pass --skip-jvhost"
  fi
  if [[ -n $jar_b ]]; then
    [[ $BENCH == bench-loopback ]] || bench_fail "--jar-b is bench-loopback's only"
    [[ $skip_jvhost -eq 0 ]] || bench_fail "--jar-b and --skip-jvhost together: --jar-b needs jvhost's runs"
    [[ -f $jar_b ]] || bench_fail "--jar-b: $jar_b not found"
    backends="jvhost jvhostb dpdk"
  fi
  if [[ $interval != 0 ]]; then
    [[ $BENCH == bench-loopback ]] || bench_fail "-i is bench-loopback's only"
    [[ $interval =~ ^[1-9][0-9]*$ && $(( seconds % interval )) -eq 0 ]] || bench_fail "-i $interval: a whole number of seconds that divides -d $seconds"
  fi
  command -v dpdk-testpmd >/dev/null || bench_fail "dpdk-testpmd missing (scripts/install-deps.sh)"
}

bench_kill_all() {  # TERM, then after 0.5 s KILL, every process in pids
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  sleep 0.5
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
}

wait_for() {  # wait_for SECONDS COMMAND...: polls COMMAND every 0.1 s
  local limit=$(( $1 * 10 )); shift
  for ((i = 0; i < limit; i++)); do "$@" && return 0; sleep 0.1; done
  return 1
}

# backend_started NAME SOCK LOG: call right after starting back-end NAME in the background; sets be_pid
# and waits up to 30 s for it to create SOCK (or die).
backend_started() {
  local name=$1 sock=$2 log=$3
  be_pid=$!
  pids+=("$be_pid")
  wait_for 30 sh -c "test -S '$sock' || ! kill -0 $be_pid 2>/dev/null"
  test -S "$sock" || { echo "$BENCH: $name did not create $sock; log:" >&2; tail -20 "$log" >&2; exit 1; }
}

# fe_start SOCK DIR LOG MODE: starts the virtio_user front-end on SOCK in forward mode MODE (commands
# through DIR/fe.in on fd 3), sets fe_pid and waits up to 30 s for its prompt.
fe_start() {
  local sock=$1 dir=$2 log=$3 mode=$4
  mkfifo "$dir/fe.in"
  "${ON_FE[@]}" stdbuf -oL dpdk-testpmd --lcores "0@$FE_CPU,1@$FE_CPU" --no-pci --no-huge -m 256 \
    --file-prefix "jvbench-fe-$$" --vdev "virtio_user0,path=$sock,queues=1,queue_size=256$fevdev" -- \
    -i --port-topology=loop --forward-mode="$mode" --burst=32 --total-num-mbufs=16384 < "$dir/fe.in" > "$log" 2>&1 &
  fe_pid=$!
  pids+=("$fe_pid")
  exec 3> "$dir/fe.in"
  wait_for 30 grep -q 'testpmd> ' "$log" || { echo "$BENCH: front-end did not start; log:" >&2; tail -20 "$log" >&2; exit 1; }
}

fe_cmd() { echo "$1" >&3; }

# fe_traffic SIZE START...: sets the frame size (testpmd's default is 64), sends the start command
# (e.g. `start` or `start tx_first 4`) and lets it run $warmup seconds to warm up (bench_options -w,
# default 5; 1 s in a script that takes no options).
fe_traffic() {
  local size=$1; shift
  if [[ "$size" != 64 ]]; then fe_cmd "set txpkts $size"; fi
  fe_cmd "$*"
  sleep "${warmup:-1}"
}

fe_stats() {  # prints "RX TX" of port 0, waiting for the new block
  local log=$1 before
  before=$(grep -c 'Tx-pps' "$log" || true)
  fe_cmd "show port stats all"
  wait_for 10 sh -c "[ \$(grep -c 'Tx-pps' '$log') -gt $before ]" || { echo "$BENCH: no stats from testpmd" >&2; tail -20 "$log" >&2; exit 1; }
  awk '/NIC statistics for port 0/ { rx = ""; tx = "" }
       /RX-packets:/ && rx == "" { rx = $2 }
       /TX-packets:/ && tx == "" { tx = $2 }
       END { print rx, tx }' "$log"
}

# measure COMMAND...: runs COMMAND (it prints counters) before and after $seconds; sets t0 s0 t1 s1.
measure() {
  t0=$(date +%s.%N); s0=$("$@")
  sleep "$seconds"
  t1=$(date +%s.%N); s1=$("$@")
}

# stop_peers NAME: quits the front-end, then stops back-end NAME; each gets 10 s before KILL.
stop_peers() {
  local name=$1
  fe_cmd "stop"; fe_cmd "quit"
  exec 3>&-
  wait_for 10 sh -c "! kill -0 $fe_pid 2>/dev/null" || kill -9 "$fe_pid" 2>/dev/null || true
  kill "$be_pid" 2>/dev/null || true
  wait_for 10 sh -c "! kill -0 $be_pid 2>/dev/null" || kill -9 "$be_pid" 2>/dev/null || true
  if [[ "$name" == dpdk ]]; then exec 4>&-; fi
  wait "$fe_pid" "$be_pid" 2>/dev/null || true
}

mpps() {  # mpps COUNT0 COUNT1 T0 T1: the rate between two counter readings, in millions per second
  awk -v a="$1" -v b="$2" -v t0="$3" -v t1="$4" 'BEGIN { printf "%.3f", (b - a) / (t1 - t0) / 1e6 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }  # ratio A B: A / B

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# bench_rounds: calls run_once BACKEND SIZE (the script's) for every round, size and back-end; run_once
# appends "BACKEND SIZE MPPS" to $results and may read $round.
bench_rounds() {
  : > "$results"
  for ((round = 1; round <= rounds; round++)); do
    for size in $sizes; do
      # Rotate which back-end goes first so none always gets the quieter slot (with two: alternate).
      order=$(echo $backends | awk -v r="$round" '{ for (i = 0; i < NF; i++) printf "%s ", $(1 + (i + r - 1) % NF) }')
      for name in $order; do run_once "$name" "$size"; done
    done
  done
}

# bench_medians WHAT: per size, the median of each back-end's runs and the jvhost/dpdk ratio, then each
# back-end's spread: its slowest and fastest run and the fastest over the slowest (issue 11 asks that
# jvhost's be no wider than DPDK's in the same run).
bench_medians() {
  echo "# medians (Mpps, $1)"
  local size name line m med_jvhost med_jvhostb med_dpdk
  for size in $sizes; do
    line="size $size B:"
    for name in $backends; do
      m=$(awk -v n="$name" -v s="$size" '$1 == n && $2 == s { print $3 }' "$results" | median)
      line="$line $name $m"
      eval "med_$name=$m"
    done
    if [[ $skip_jvhost -eq 0 ]]; then
      line="$line  ratio jvhost/dpdk $(ratio "$med_jvhost" "$med_dpdk")"
    fi
    if [[ -n $jar_b ]]; then
      line="$line  jvhostb/dpdk $(ratio "$med_jvhostb" "$med_dpdk")"
      line="$line  jvhostb/jvhost $(ratio "$med_jvhostb" "$med_jvhost")"
    fi
    echo "$line"
  done
  echo "# spread (slowest - fastest run, fastest / slowest)"
  for size in $sizes; do
    line="size $size B:"
    for name in $backends; do
      line="$line $name $(awk -v n="$name" -v s="$size" '$1 == n && $2 == s { v = $3 + 0; if (c++ == 0 || v < lo) lo = v; if (v > hi) hi = v }
        END { if (c == 0) print "n/a"; else printf "%.3f-%.3f (%.2f)", lo, hi, (lo > 0 ? hi / lo : 0) }' "$results")"
    done
    echo "$line"
  done
}

# pin_jvhost_workers PID: moves every thread of jvhost's JVM PID to the front-end's CPU except its
# jvhost-worker-N threads, which stay alone on the back-end's CPU (JIT compilers, GC and the control
# threads otherwise share the worker's CPU). The front-end pays for those threads instead, so this
# tells whether they slow the worker, not a fair comparison with DPDK.
pin_jvhost_workers() {
  local pid=$1 task comm
  for task in /proc/"$pid"/task/*; do
    comm=$(cat "$task/comm" 2>/dev/null) || continue
    if [[ "$comm" == jvhost-worker* ]]; then
      taskset -p -c "$BE_CPU" "${task##*/}" > /dev/null
    else
      taskset -p -c "$FE_CPU" "${task##*/}" > /dev/null
    fi
  done
}
