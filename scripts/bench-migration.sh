#!/usr/bin/env bash
# Live-migration downtime of a QEMU guest on a reflecting vhost-user NIC, jvhost against DPDK's
# net_vhost in the same run (issue 10's benchmark). Each run: a source QEMU 7.2 (TCG, 256 MiB memfd RAM,
# the ITs' guest in jvtest.mode=periodic, one frame every 0.2 s reflected back) on device A; a destination
# QEMU with the same options plus -incoming on device B; QMP `migrate` over a Unix socket, then
# `query-migrate` until completed. Recorded: QMP's downtime and total time, and whether the guest's rx
# counter rose on the destination (its serial console continues there).
#   jvhost : one `java -jar jvhost.jar serve` with two loopback devices A and B   (pinned to CPU 1)
#   dpdk   : two dpdk-testpmd, each one net_vhost port + macswap forwarder       (pinned to CPU 1)
# Back-ends alternate order per round; QEMU is not pinned. Under TCG on a shared 2-CPU machine, downtime
# measures QEMU's switch-over as much as the back-end's part (stopping rings, the log sync, the start on
# the destination): compare medians of the two back-ends, not single runs.
#
# Usage: scripts/bench-migration.sh [-r ROUNDS] [--jar PATH] [--skip-jvhost]
# JVHOST_TRACE_DIR (environment): jvhost traces every vhost-user message of device a (source) and b
# (destination) into DIR/roundN-a.trace and -b.trace (text), to see where the downtime goes; not for timing.
# Prints one line per run, then per back-end the medians and the jvhost/dpdk ratio. Needs root for DPDK.
# The guest image is host/target/it-guest (built with scripts/build-guest.sh if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=bench-migration
source scripts/lib/testpmd.sh
bench_options -r 3 "$@"
command -v qemu-system-x86_64 >/dev/null || bench_fail "qemu-system-x86_64 missing (scripts/install-deps.sh)"
command -v socat >/dev/null || bench_fail "socat missing (scripts/install-deps.sh)"

guest=host/target/it-guest
[[ -f $guest/vmlinuz && -f $guest/initramfs.cpio.gz ]] || scripts/build-guest.sh "$guest" > /dev/null

work=$(mktemp -d /tmp/jvmig.XXXXXX)
results=$work/results
pids=()
trap 'stop_all; rm -rf "$work"' EXIT

trace() {  # trace SIDE: jvhost's device options for a message trace, if JVHOST_TRACE_DIR is set
  [[ -n "${JVHOST_TRACE_DIR:-}" ]] && echo ",trace=$JVHOST_TRACE_DIR/round$round-$1.trace,trace-format=text"
  return 0
}

start_backends() {  # start_backends NAME DIR: back-end(s) serving DIR/a.sock and DIR/b.sock
  local name=$1 dir=$2 side
  case "$name" in
    jvhost)
      taskset -c "$BE_CPU" java -jar "$jar" serve --device "loopback:socket=$dir/a.sock$(trace a)" \
        --device "loopback:socket=$dir/b.sock$(trace b)" > "$dir/jvhost.log" 2>&1 < /dev/null &
      backend_started jvhost "$dir/a.sock" "$dir/jvhost.log"
      wait_for 10 test -S "$dir/b.sock" || bench_fail "jvhost did not create $dir/b.sock"
      ;;
    dpdk)
      for side in a b; do
        mkfifo "$dir/$side.in"
        # hold the fifo open: testpmd waits on stdin and exits when it closes
        sleep 1000000 > "$dir/$side.in" &
        pids+=($!)
        taskset -c "$BE_CPU" stdbuf -oL dpdk-testpmd --lcores "0@$BE_CPU,1@$BE_CPU" --no-pci --no-huge -m 256 \
          --file-prefix "jvmig-$side-$$" --vdev "net_vhost0,iface=$dir/$side.sock,queues=1" -- \
          --port-topology=loop --forward-mode=macswap --disable-link-check --total-num-mbufs=16384 \
          < "$dir/$side.in" > "$dir/dpdk-$side.log" 2>&1 &
        backend_started dpdk "$dir/$side.sock" "$dir/dpdk-$side.log"
      done
      ;;
  esac
}

start_qemu() {  # start_qemu DIR SIDE EXTRA...: a guest on DIR/SIDE.sock, serial to DIR/SIDE.serial
  local dir=$1 side=$2; shift 2
  qemu-system-x86_64 -accel tcg,thread=multi -cpu max -m 256M -smp 1,maxcpus=2 -machine q35,memory-backend=mem0 \
    -object memory-backend-memfd,id=mem0,size=256M,share=on \
    -chardev "socket,id=c0,path=$dir/$side.sock,reconnect=1" -netdev vhost-user,id=n0,chardev=c0,queues=1 \
    -device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,vectors=0 \
    -kernel "$guest/vmlinuz" -initrd "$guest/initramfs.cpio.gz" \
    -append "console=ttyS0 quiet panic=-1 no_timer_check jvtest.queues=1 jvtest.mode=periodic jvtest.interval=0.2" \
    -nodefaults -no-reboot -display none -serial "file:$dir/$side.serial" "$@" > "$dir/qemu-$side.log" 2>&1 < /dev/null &
  pids+=($!)
}

last_rx() {  # last_rx SERIAL: the guest's last reported rx_packets, or 0
  local n
  n=$(grep -o 'JVTEST RX rx_packets=[0-9]*' "$1" 2>/dev/null | tail -n1 | cut -d= -f2)
  echo "${n:-0}"
}
reports() { [[ $(grep -c 'JVTEST RX rx_packets=' "$1" 2>/dev/null) -ge $2 ]]; }  # reports SERIAL N
rx_above() { [[ $(last_rx "$1") -gt $2 ]]; }                                    # rx_above SERIAL N

qmp() {  # qmp SOCKET COMMAND-JSON: prints the reply to COMMAND (one line), after the capabilities handshake
  printf '%s\n' '{"execute":"qmp_capabilities"}' "$2" | socat -t 1 - "UNIX-CONNECT:$1" | grep -E '"(return|error)"' | tail -n1
}

json_field() {  # json_field NAME JSON: the value of the first "NAME" in JSON (a string or a number)
  echo "$2" | grep -o "\"$1\": *\"\?[^,}\"]*" | head -n1 | sed 's/.*: *"\?//'
}

run_fail() {  # run_fail DIR MESSAGE: the run's logs, then fail
  local f
  for f in "$1"/*.log "$1"/*.serial; do [[ -f $f ]] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }; done
  bench_fail "$2"
}

run_once() {  # run_once BACKEND -> appends "BACKEND DOWNTIME_MS TOTAL_MS OK" to $results
  local name=$1 dir status reply downtime total ok before
  dir=$(mktemp -d "$work/run.XXXX")
  start_backends "$name" "$dir"
  start_qemu "$dir" a -qmp "unix:$dir/qmp-a,server=on,wait=off"
  wait_for 90 reports "$dir/a.serial" 3 || run_fail "$dir" "$name: the source guest reported no traffic in 90 s"
  start_qemu "$dir" b -incoming "unix:$dir/mig.sock"
  wait_for 30 test -S "$dir/mig.sock" || run_fail "$dir" "$name: the destination QEMU did not listen"
  qmp "$dir/qmp-a" "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"unix:$dir/mig.sock\"}}" > /dev/null
  status=""
  for ((i = 0; i < 300; i++)); do
    reply=$(qmp "$dir/qmp-a" '{"execute":"query-migrate"}')
    status=$(json_field status "$reply")
    [[ "$status" == completed || "$status" == failed ]] && break
    sleep 0.3
  done
  [[ "$status" == completed ]] || run_fail "$dir" "$name: migration $status: $reply"
  downtime=$(json_field downtime "$reply")
  total=$(json_field total-time "$reply")
  # the guest goes on on the destination: its rx counter rises past what it had on the source
  before=$(last_rx "$dir/a.serial")
  ok=no
  wait_for 40 rx_above "$dir/b.serial" $((before + 5)) && ok=yes
  echo "$name round $round: downtime ${downtime} ms, total ${total} ms, traffic on the destination: $ok"
  echo "$name $downtime $total $ok" >> "$results"
  stop_all
}

stop_all() {  # TERM every process of the run, KILL what is left after 10 s
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    wait_for 10 sh -c "! kill -0 $pid 2>/dev/null" || kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}

echo "# $BENCH: $(date -u +%FT%TZ), kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg), $(qemu-system-x86_64 --version | head -n1)"
: > "$results"
for ((round = 1; round <= rounds; round++)); do
  order=$backends
  [[ $((round % 2)) -eq 0 ]] && order=$(echo "$backends" | tr ' ' '\n' | tac | tr '\n' ' ')
  for name in $order; do run_once "$name"; done
done
for name in $backends; do
  d=$(awk -v n="$name" '$1 == n { print $2 }' "$results" | median)
  t=$(awk -v n="$name" '$1 == n { print $3 }' "$results" | median)
  ok=$(awk -v n="$name" '$1 == n && $4 == "yes"' "$results" | wc -l)
  echo "median $name: downtime $d ms, total $t ms ($ok of $rounds runs had traffic on the destination)"
  eval "med_$name=$d"
done
if [[ $skip_jvhost -eq 0 ]]; then
  awk -v a="$med_jvhost" -v b="$med_dpdk" 'BEGIN { if (b > 0) printf "downtime ratio jvhost/dpdk: %.2f\n", a / b }'
fi
