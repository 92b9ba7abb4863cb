#!/usr/bin/env bash
# Guest disk I/O through a vhost-user-blk back-end: a QEMU guest (TCG, 1 vCPU, vhost-user-blk-pci, 1
# queue) runs scripts/lib/blkio.c (O_DIRECT on /dev/vda; compiled statically here and added to the test
# image's initramfs) in four passes, and the same back-end file is served, interleaved round by round, by
#   jvhost : java -jar jvhost.jar serve --device blk:socket=SOCK,path=IMG                       (CPU 1)
#   qsd    : qemu-storage-daemon --blockdev driver=file,... --export type=vhost-user-blk,...      (CPU 1)
# with QEMU on CPU 0. Both go through the host's page cache (jvhost's io_uring, uring=auto, or its I/O
# threads when the kernel refuses io_uring; qsd's default cache.direct=off, aio=threads). Passes: seqread and seqwrite of 1 MiB requests, one in flight;
# randread and randwrite of 4 KiB requests, 16 in flight from one guest thread with Linux native AIO (as
# fio's libaio engine with iodepth=16 would; -q sets the depth, -q 1 gives the earlier form: 4 guest
# threads with one synchronous request each).
#
# The guest has one vCPU but -smp 1,maxcpus=2: with -smp 1 TCG leaves the guest's memory barriers out, and
# the guest then loses interrupts from any back-end in another process (a stall about once per 150,000
# requests at 16 in flight; see QemuGuest.ONE_VCPU in the host's tests).
#
# Under TCG the guest's CPU is slow, so these figures compare the two back-ends under the same guest,
# not the back-ends' own ceilings.
#
# Needs qemu-system-x86 (with qemu-storage-daemon), gcc and libc6-dev (a static blkio), root not required.
# Usage: scripts/bench-blk.sh [-r ROUNDS] [-d SECONDS-PER-PASS] [-w WARM-UP-SECONDS] [-q DEPTH] [--jar PATH] [--blk-options OPTS]
#          [--serve-options "ARGS"] [--java-options "ARGS"] [--passes "seqread seqwrite ..."] [--backends "jvhost qsd"]
# (OPTS: more options of jvhost's blk device, e.g. uring=off, appended to its --device spec; ARGS: more
# arguments of `jvhost serve` (e.g. --poll-us 0) or of its java command (e.g. a profiler agent); --passes
# and --backends run a subset in the order given, e.g. to profile one back-end on one pass; -w: before the
# timed passes the guest runs each pass untimed for that long, against either back-end alike; default 2)
#
# Why the warm-up is on by default: each round starts a fresh back-end process, and a fresh JVM spends
# about 2 s of CPU in its JIT compilers during its first seconds of I/O, on the one CPU it shares with
# that I/O; a daemon that serves a VM pays this once per process, not per workload, and
# qemu-storage-daemon (compiled ahead of time) pays nothing alike. So the default compares the two back-ends
# in their steady state, both warmed the same way; -w 0 shows jvhost's start-up cost (BENCHMARKS.md
# records both).
# Prints one line per pass and run, then per pass the medians (IOPS) and the jvhost/qsd ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3 secs=4 warm=2 depth=16 jar=host/target/jvhost.jar blkopts= serveopts= javaopts= only= backends="jvhost qsd"
while [[ $# -gt 0 ]]; do
  case "$1" in
    -r) rounds=$2; shift 2 ;;
    -d) secs=$2; shift 2 ;;
    -w) warm=$2; shift 2 ;;
    -q) depth=$2; shift 2 ;;
    --jar) jar=$2; shift 2 ;;
    --blk-options) blkopts=,$2; shift 2 ;;
    --serve-options) serveopts=$2; shift 2 ;;
    --java-options) javaopts=$2; shift 2 ;;
    --passes) only=$2; shift 2 ;;
    --backends) backends=$2; shift 2 ;;
    *) echo "usage: $0 [-r ROUNDS] [-d SECONDS] [-w SECONDS] [-q DEPTH] [--jar PATH] [--blk-options OPTS] [--serve-options ARGS]" \
         "[--java-options ARGS] [--passes PASSES] [--backends BACKENDS]" >&2; exit 2 ;;
  esac
done
[[ -f "$jar" ]] || { echo "bench-blk: no $jar (mvn -pl host -am package)" >&2; exit 1; }
jar=$(cd "$(dirname "$jar")" && pwd)/$(basename "$jar")
[[ "$depth" =~ ^[0-9]+$ ]] && ((depth >= 1 && depth <= 64)) || { echo "bench-blk: -q takes 1-64" >&2; exit 2; }
# mode:block size:guest threads:requests in flight per thread
if ((depth == 1)); then rand=4:1; else rand=1:$depth; fi
PASSES="seqread:1048576:1:1 seqwrite:1048576:1:1 randread:4096:$rand randwrite:4096:$rand"
if [[ -n "$only" ]]; then
  PASSES=$(for o in $only; do for p in $PASSES; do if [[ "$o" == "${p%%:*}" ]]; then echo "$p"; fi; done; done | xargs)
  [[ -n "$PASSES" ]] || { echo "bench-blk: --passes names none of seqread seqwrite randread randwrite" >&2; exit 2; }
fi
work=$(mktemp -d /tmp/jvbench-blk.XXXXXX)
pids=()
finished=0
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  if ((finished)); then rm -rf "$work"; else rm -f "$work/disk.img"; echo "bench-blk: logs kept in $work" >&2; fi
}
trap cleanup EXIT

# The guest: the test image, plus an overlay with blkio and an /init that runs the passes.
scripts/build-guest.sh "$work/guest" > "$work/build-guest.log" 2>&1 || { cat "$work/build-guest.log"; exit 1; }
mkdir -p "$work/overlay/sbin"
gcc -O2 -static -pthread -o "$work/overlay/sbin/blkio" scripts/lib/blkio.c
cat > "$work/overlay/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev 2>/dev/null
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk; do
  insmod /lib/modules/\$m.ko
done
i=0; while [ ! -e /dev/vda ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i + 1)); done
if [ $warm -gt 0 ]; then
  for p in $PASSES; do
    blkio /dev/vda \$(echo \$p | tr : ' ' | awk '{ print \$1, \$2, $warm, \$3, \$4 }') > /dev/null || echo "BLKIO warm-up \$p FAILED"
  done
fi
for p in $PASSES; do
  blkio /dev/vda \$(echo \$p | tr : ' ' | awk '{ print \$1, \$2, $secs, \$3, \$4 }') || echo "BLKIO \$p FAILED"
done
echo BENCH-DONE
sync; poweroff -f
INIT
chmod 755 "$work/overlay/init"
(cd "$work/overlay" && find init sbin | cpio -o -H newc --quiet | gzip -1) > "$work/overlay.cpio.gz"
cat "$work/guest/initramfs.cpio.gz" "$work/overlay.cpio.gz" > "$work/initramfs.cpio.gz"

img=$work/disk.img
dd if=/dev/urandom of="$img" bs=1M count=256 status=none

start_backend() {  # start_backend NAME SOCK LOG
  case "$1" in
    # shellcheck disable=SC2086 # the option strings are word lists
    jvhost) taskset -c 1 java $javaopts -jar "$jar" serve $serveopts --device "blk:socket=$2,path=$img$blkopts" \
              > "$3" 2>&1 < /dev/null & ;;
    qsd) taskset -c 1 qemu-storage-daemon --blockdev "driver=file,node-name=f,filename=$img" \
           --export "type=vhost-user-blk,id=e,node-name=f,addr.type=unix,addr.path=$2,writable=on" > "$3" 2>&1 < /dev/null & ;;
  esac
  be=$!; pids+=("$be")
  for ((i = 0; i < 200; i++)); do [[ -S "$2" ]] && return 0; sleep 0.1; done
  echo "bench-blk: $1 made no socket: $(tail -n 5 "$3")" >&2; exit 1
}

run_once() {  # run_once NAME ROUND: appends "NAME PASS IOPS MIBPS" to $work/results
  local name=$1 dir=$work/$1-$2
  mkdir -p "$dir"
  start_backend "$name" "$dir/sock" "$dir/backend.log"
  timeout $((60 + 6 * secs + 6 * warm)) taskset -c 0 qemu-system-x86_64 -accel tcg -cpu max -m 256M -smp 1,maxcpus=2 \
    -machine q35,memory-backend=mem0 -object memory-backend-memfd,id=mem0,size=256M,share=on \
    -chardev "socket,id=c1,path=$dir/sock" -device vhost-user-blk-pci,chardev=c1,num-queues=1,vectors=0 \
    -kernel "$work/guest/vmlinuz" -initrd "$work/initramfs.cpio.gz" -append "console=ttyS0 quiet panic=-1" \
    -nodefaults -no-reboot -display none -serial stdio < /dev/null > "$dir/guest.log" 2>&1 || true
  kill "$be"; wait "$be" 2>/dev/null || true
  grep -q BENCH-DONE "$dir/guest.log" || { echo "bench-blk: $name round $2: the guest did not finish: $(tail -n 5 "$dir/guest.log")" >&2; exit 1; }
  grep -a '^BLKIO' "$dir/guest.log" | tr -d '\r' | while read -r _ pass rest; do
    [[ "$rest" == *FAILED* ]] && { echo "bench-blk: $name round $2: $pass failed" >&2; exit 1; }
    iops=$(sed 's/.*iops=\([0-9.]*\).*/\1/' <<< "$rest"); mib=$(sed 's/.*mibps=\([0-9.]*\).*/\1/' <<< "$rest")
    echo "$name round $2 $pass iops=$iops MiB/s=$mib"
    echo "$name $pass $iops $mib" >> "$work/results"
  done
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

: > "$work/results"
for ((r = 1; r <= rounds; r++)); do
  order=$backends
  if (( r % 2 == 0 )); then order=$(tr ' ' '\n' <<< "$backends" | tac | xargs); fi  # neither always goes first
  for name in $order; do run_once "$name" "$r"; done
done
echo "# medians of $rounds rounds (IOPS, MiB/s), ratio jvhost/qsd of the IOPS medians"
for p in $PASSES; do
  pass=${p%%:*}
  j=$(awk -v p="$pass" '$1 == "jvhost" && $2 == p { print $3 }' "$work/results" | median)
  q=$(awk -v p="$pass" '$1 == "qsd" && $2 == p { print $3 }' "$work/results" | median)
  jm=$(awk -v p="$pass" '$1 == "jvhost" && $2 == p { print $4 }' "$work/results" | median)
  qm=$(awk -v p="$pass" '$1 == "qsd" && $2 == p { print $4 }' "$work/results" | median)
  echo "$pass ($(tr : ' ' <<< "${p#*:}" | awk '{ print $1 " B, " $2 * $3 " in flight" }')): jvhost $j ($jm MiB/s) qsd $q ($qm MiB/s) ratio $(awk -v a="$j" -v b="$q" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }')"
done
finished=1
