#!/usr/bin/env bash
# Throughput of a vhost-user net back-end between DPDK testpmd's virtio_user front-end (ring 256, burst
# 32, 1 queue pair, --no-huge) and a TAP in a network namespace of this script's own, in one direction:
#   TX (default): the front-end sends in `txonly`; the back-end writes every frame into the TAP.
#       Rate = the TAP's rx_packets (frames the kernel took from the back-end) per second.
#   RX (--rx): scripts/lib/tapgen.c queues frames in the TAP from an AF_PACKET socket in the namespace;
#       the back-end reads them from the TAP into the front-end's buffers (`rxonly`). Rate = how fast the
#       back-end empties the full TAP (below); the run also prints how many reached the front-end.
#       (-d applies to TX only.)
# Compares, interleaved so machine noise hits both alike:
#   jvhost : ip netns exec NS java -jar jvhost.jar serve --device net:socket=SOCK,tap=jvbtap0   (CPU 1)
#   dpdk   : ip netns exec NS dpdk-testpmd --vdev net_vhost0,iface=SOCK --vdev net_tap0,iface=jvbtap0
#            --forward-mode=io (vhost -> TAP and TAP -> vhost)                               (CPU 1)
# with the front-end on CPU 0, over a timed interval after a warm-up (-w, 5 s). jvhost writes to the TAP through
# io_uring by default (uring=auto); `-o uring=off` measures its one-writev-per-frame path. Each jvhost run
# prints the TAP data path jvhost logged (io_uring or one system call per frame).
#
# The RX generator, and why it is not running while the rate is measured. The machine has two CPUs and
# the back-end has CPU 1 to itself, so a generator would share CPU 0 with the front-end (busy-polling, as
# DPDK does), and no sender this kernel offers is cheap enough for that: there is no pktgen, and an
# AF_PACKET sender (sendmmsg, PACKET_QDISC_BYPASS) costs the kernel 1-2.5 us per frame here, under a
# million frames per second on a whole CPU, less than the back-ends take; paced beside the front-end it
# either starved it (the ring of 256 buffers lasts under 0.2 ms) or offered too little (tried
# 2026-12-07: 0.001 Mpps reached the front-end). So the frames are queued first and the back-end drains
# them with the front-end alone on CPU 0: with both peers' forwarding stopped, `tapgen fill` queues
# FRAMES frames in the TAP (-n; default 500,000 at 64 B, 300,000 at 1500 B: txqueuelen is raised to
# hold them all, and the kernel refuses more than about 520,000: its queue's array, 8 bytes a frame,
# must fit one 4 MiB allocation; a reader that is not reading leaves them there: jvhost fills the front-end's 256 buffers and waits, DPDK's stopped testpmd does not poll), then
# both start and `tapgen drain` samples the TAP's tx_packets (frames its reader took) every 100 us: the
# rate is the one between 10% and 90% of the frames taken. Two warm-up fills and drains of 300,000 frames (or
# FRAMES, if fewer) come first (JIT). Each run also prints the frames the front-end received during the drain (all of
# them, unless the back-end lost some) and what tapgen's fill reported.
# What the drain costs the comparison: every queued skb is cold when the back-end reads it, which a
# steady state would not make it, but both back-ends pay that alike (profiled 2026-12-07: the first touch
# of the skb in tun_do_read costs each about 130-170 ns per frame; BENCHMARKS.md), so it lowers both rates
# rather than the ratio. The RX target is judged on the delivered rate (the second median line).
#
# Usage: scripts/bench-net.sh [--rx] [-n FRAMES] [-r ROUNDS] [-d SECONDS] [-w WARMUP-SECONDS] [-s "64 1500"] [--skip-jvhost] [--jar PATH] [-o DEVICE-OPTIONS]
# JVHOST_JAVA_OPTS (environment): extra JVM options for jvhost, e.g. a profiler agent.
# Prints one line per run, then per size the medians and the jvhost/dpdk ratio. Needs root (netns, TAP),
# and gcc for --rx (tapgen is compiled into the script's temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=bench-net
source scripts/lib/testpmd.sh
direction=tx frames="" args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rx) direction=rx; shift ;;
    -n) frames=$2; shift 2 ;;
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
trap '' PIPE  # a peer that died makes its fifo's write fail with a message, not end the script unexplained
if [[ $direction == rx ]]; then
  command -v gcc >/dev/null || bench_fail "gcc missing: --rx compiles scripts/lib/tapgen.c"
  gcc -O2 -o "$work/tapgen" scripts/lib/tapgen.c
fi

tap_stat() { ip netns exec "$ns" cat "/sys/class/net/$TAP/statistics/$1"; }
tap_rx() { tap_stat rx_packets; }

# What jvhost logged about its TAP data path (io_uring or one system call per frame), one line.
tap_path() {
  { grep -o 'TAP [^ ]*: .*[TR]X .*' "$1" || echo "no TAP data path logged"; } | sed 's/^TAP [^ ]*: //' | paste -sd ';' | cut -c1-160
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
      # RX: interactive, so that forwarding starts only when the TAP is full (`be_cmd start`); SIGIO
      # ignored, as interactive testpmd was killed by the SIGIO of frames reaching its TAP (net_tap asks
      # for one per frame to wake its polling; it reads regardless)
      ( [[ $direction == rx ]] && trap '' IO; exec ip netns exec "$ns" "${ON_BE[@]}" stdbuf -oL dpdk-testpmd --lcores "0@$BE_CPU,1@$BE_CPU" --no-pci \
        --no-huge -m 256 --file-prefix "jvbench-be-$$" --vdev "net_vhost0,iface=$sock,queues=1" \
        --vdev "net_tap0,iface=$TAP" -- $([[ $direction == rx ]] && echo -i) --forward-mode=io --disable-link-check \
        --total-num-mbufs=16384 < "$sock.in" > "$log" 2>&1 ) &
      exec 4> "$sock.in"
      ;;
  esac
  backend_started "$name" "$sock" "$log"
  wait_for 10 ip netns exec "$ns" test -e "/sys/class/net/$TAP" || bench_fail "$name made no $TAP"
  ip netns exec "$ns" ip link set "$TAP" up
}

be_cmd() { if [[ $1 == dpdk ]]; then echo "$2" >&4; fi; }

# rx_drain NAME SIZE COUNT: with both peers stopped, queues COUNT frames in the TAP, starts both and
# waits until the back-end has taken them (at most 30 s); prints tapgen's fill line, the drain line
# goes to $dir/drain.log. Stops both peers again afterwards.
rx_drain() {
  local name=$1 size=$2 count=$3 fill base
  # counted from before the fill: a back-end may take some frames before it is started (jvhost fills the
  # front-end's 256 buffers). Read here, not in the background job's own expansion, which may run after
  # the fill began: the base was then up to 256 too high and the drain waited 30 s for frames already taken
  base=$(tap_stat tx_packets)
  ip netns exec "$ns" "${ON_FE[@]}" "$work/tapgen" drain "$TAP" "$base" "$count" 30 > "$dir/drain.log" &
  local sampler=$!
  fill=$(ip netns exec "$ns" "${ON_FE[@]}" "$work/tapgen" fill "$TAP" "$size" "$count")
  fe_cmd start
  be_cmd "$name" start
  wait "$sampler" || true
  fe_cmd stop
  be_cmd "$name" stop
  sleep 0.3
  echo "$fill"
}

run_once() {  # run_once BACKEND SIZE -> appends "BACKEND SIZE MPPS" to $results
  local name=$1 size=$2 dir sock be_log fe_log rate delivered=
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
    local n=${frames:-$([[ $size -le 256 ]] && echo 500000 || echo 300000)} fill drained rx0 rx1 tx_
    ip netns exec "$ns" ip link set "$TAP" txqueuelen $((n + 1000))
    fe_start "$sock" "$dir" "$fe_log" rxonly
    # warm-up: two drains, so that the JIT has compiled jvhost's RX path before the measured one (with one
    # of 100,000 frames its compiler threads still took 10-15% of CPU 1 during the measured drain, and with
    # two of 200,000 about 10%: the readiness callback, called once per 64 frames, reached C2 only then)
    rx_drain "$name" "$size" $((n < 300000 ? n : 300000)) > /dev/null
    rx_drain "$name" "$size" $((n < 300000 ? n : 300000)) > /dev/null
    read -r rx0 tx_ <<< "$(fe_stats "$fe_log")"
    fill=$(rx_drain "$name" "$size" "$n")
    drained=$(cat "$dir/drain.log")
    read -r rx1 tx_ <<< "$(fe_stats "$fe_log")"
    rate=$(echo "$drained" | sed -n 's/.* at \([0-9.]*\) Mpps/\1/p')
    # delivered: the rate times the share of the frames the front-end got (a back-end that drops frames it
    # took, as DPDK's io forwarding does when the front-end's ring is full, has not delivered them)
    delivered=$(awk -v r="$rate" -v got=$((rx1 - rx0)) -v n="$n" 'BEGIN { printf "%.3f", r * (got < n ? got : n) / n }')
    extra="  ($drained; front-end got $((rx1 - rx0)), delivered $delivered Mpps; tapgen $fill)"
    be_cmd "$name" quit
  fi
  stop_peers "$name"
  ip netns del "$ns"
  if [[ $name == jvhost ]]; then extra="$extra  [$(tap_path "$be_log")]"; fi
  printf '%-7s %5s B  round %d  %s %7s Mpps%s\n' "$name" "$size" "$round" \
    "$([[ $direction == tx ]] && echo 'TAP rx' || echo 'drain')" "$rate" "$extra"
  echo "$name $size $rate ${delivered:-}" >> "$results"
}

if [[ $direction == tx ]]; then
  echo "# bench-net TX (guest to TAP): $rounds rounds x ${seconds} s, sizes: $sizes, back-ends: $backends (CPU $BE_CPU), front-end testpmd txonly (CPU $FE_CPU), TAP in netns $ns"
else
  echo "# bench-net RX (TAP to guest): $rounds rounds x ${seconds} s, sizes: $sizes, back-ends: $backends (CPU $BE_CPU), front-end testpmd rxonly (CPU $FE_CPU), TAP filled with ${frames:-500000 (64 B) or 300000 (1500 B)} frames, then drained, in netns $ns"
fi
echo "# kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg), nice $BENCH_NICE, $(date -u +%Y-%m-%dT%H:%MZ)"
bench_rounds
bench_medians "$([[ $direction == tx ]] && echo 'frames the TAP received per second' || echo 'frames the back-end took from a full TAP per second, 10%-90%')"
if [[ $direction == rx && $skip_jvhost -eq 0 ]]; then
  echo "# medians (Mpps, frames delivered to the front-end per second: the rate above times the share it got)"
  for size in $sizes; do
    j=$(awk -v s="$size" '$1 == "jvhost" && $2 == s { print $4 }' "$results" | median)
    d=$(awk -v s="$size" '$1 == "dpdk" && $2 == s { print $4 }' "$results" | median)
    echo "size $size B: jvhost $j dpdk $d  ratio jvhost/dpdk $(ratio "$j" "$d")"
  done
fi
