#!/usr/bin/env bash
# Builds the integration tests' guest: OUTDIR/vmlinuz (the kernel of the installed Debian package
# linux-image-amd64, NOT the running host's kernel) and OUTDIR/initramfs.cpio.gz, a busybox userland
# whose /init loads the virtio-net module chain, configures eth0 from the kernel command line, sends
# frames to a reflecting back-end and reports what came back on the serial console.
#
# Kernel command line understood by /init (all optional except jvtest.mode):
#   jvtest.mode=burst|periodic   burst: send COUNT frames, print "JVTEST PASS rx_delta=D" or
#                                "JVTEST FAIL ...", power off. periodic: send one frame per INTERVAL
#                                seconds forever, printing "JVTEST RX rx_packets=R tx_packets=T"
#                                (with queues>1 one frame per vCPU, and "JVTEST RXQ rxq_packets=r0,r1,...").
#   jvtest.ip=10.99.0.2/24  jvtest.peer=10.99.0.1  jvtest.peermac=52:54:00:00:00:01
#   jvtest.count=20  jvtest.interval=0.5
#   jvtest.queues=1              >1: ethtool -L eth0 combined N, and burst mode sends from N vCPUs
#                                (one per transmit queue); the verdict adds rxq_delta=r0,r1,...
#   jvtest.mode=tap              against a real peer (a TAP's side) instead of a reflector: ARP as usual,
#                                "JVTEST PING ok" after 3 answered pings; with queues>1 pings from every
#                                vCPU and "JVTEST RXQ rxq_delta=... txq_delta=..."; then TCP transfers with
#                                busybox nc: jvtest.mib MiB of random data to PEER:5001 ("JVTEST TXSUM md5"),
#                                then everything PEER:5002 sends ("JVTEST RXSUM md5 bytes=N"), read only
#                                after jvtest.rxdelay seconds (default 0); with jvtest.pingevery=SECS
#                                a ping to PEER every SECS runs under the transfers (a frame each way
#                                all the time, for the host to time gaps by); with
#                                jvtest.iperf=1 "iperf3 -c PEER -t 3" ("JVTEST IPERF <receiver line>");
#                                finally "JVTEST PASS" and power off.
#   jvtest.mode=gap              against a reflector (the loopback device): scripts/lib/gapprobe.c sends a
#                                frame every jvtest.gapus microseconds (default 200) for ever and prints a
#                                "JVTEST GAP ..." line every jvtest.gapwin ms (default 250): the longest
#                                time between two reflected frames arriving, lost and duplicated frames
#                                (the traffic gap as the guest sees it; needs gcc and a static libc)
#
# Why rx_packets and not ping's replies: a MAC-swapping reflector returns the guest's own ICMP echo
# request addressed to the guest's MAC; the kernel counts it in eth0's rx_packets, then drops it
# (it is not addressed to our IP), so ping reports no replies although every frame made the round trip.
#
# Usage: scripts/build-guest.sh OUTDIR     (writes only into OUTDIR; OUTDIR should be under target/)
set -euo pipefail

out=${1:?usage: build-guest.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# The guest kernel: the version the linux-image-amd64 meta-package depends on.
kver=$(dpkg-query -W -f='${Depends}' linux-image-amd64 2>/dev/null | sed -n 's/^linux-image-\([^ ,]*\).*/\1/p')
if [[ -z "$kver" || ! -e "/boot/vmlinuz-$kver" ]]; then
  kver=$(ls /boot/vmlinuz-*-amd64 2>/dev/null | sed 's|/boot/vmlinuz-||' | sort -V | tail -n1)
fi
[[ -n "$kver" && -r "/boot/vmlinuz-$kver" ]] || { echo "build-guest: no readable /boot/vmlinuz-*-amd64 (install linux-image-amd64)" >&2; exit 1; }
moddir=/lib/modules/$kver
[[ -d "$moddir" ]] || { echo "build-guest: $moddir missing" >&2; exit 1; }
busybox=/bin/busybox   # from busybox-static: the guest has no C library of its own
[[ -x "$busybox" ]] && ! ldd "$busybox" >/dev/null 2>&1 || { echo "build-guest: $busybox missing or not static (install busybox-static)" >&2; exit 1; }

# Load order from Debian 6.1's modules.dep (dependencies first).
MODULES=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net virtio_blk)

stage=$(mktemp -d "$out/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,dev,proc,sys,tmp,etc,lib/modules,lib64,lib/x86_64-linux-gnu}
cp "$busybox" "$stage/bin/busybox"

for m in "${MODULES[@]}"; do
  rel=$(awk -F: -v m="$m" '{ n = $1; sub(/.*\//, "", n); sub(/\.ko(\.xz|\.zst|\.gz)?$/, "", n); if (n == m) { print $1; exit } }' "$moddir/modules.dep")
  if [[ -z "$rel" ]]; then
    # Built into this kernel rather than a module: nothing to load.
    grep -qE "/$m\.ko$" "$moddir/modules.builtin" 2>/dev/null && continue
    echo "build-guest: module $m not found in $moddir/modules.dep" >&2; exit 1
  fi
  src=$moddir/$rel
  case "$src" in
    *.ko)     cp "$src" "$stage/lib/modules/$m.ko" ;;
    *.ko.xz)  xz -dc "$src" > "$stage/lib/modules/$m.ko" ;;
    *.ko.gz)  gzip -dc "$src" > "$stage/lib/modules/$m.ko" ;;
    *.ko.zst) zstd -qdc "$src" > "$stage/lib/modules/$m.ko" ;;
  esac
done
printf '%s\n' "${MODULES[@]}" > "$stage/etc/modules.order"

# Host binaries the guest runs, with their shared libraries, if the host has them: ethtool (for
# multi-queue guests) and iperf3 (jvtest.mode=tap; busybox has no iperf).
copy_with_libs() {
  [[ -x "$1" ]] || return 0
  cp "$1" "$stage/sbin/$(basename "$1")"
  for lib in $(ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
    mkdir -p "$stage$(dirname "$lib")"
    cp -L "$lib" "$stage$lib"
  done
}
copy_with_libs /usr/sbin/ethtool
copy_with_libs /usr/bin/iperf3
# The gap probe (jvtest.mode=gap), static: the guest has no C library of its own.
if command -v gcc >/dev/null 2>&1; then
  gcc -static -O2 -o "$stage/sbin/gapprobe" "$(dirname "$0")/lib/gapprobe.c"
fi

cat > "$stage/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null

say() { echo "JVTEST $*"; }
fail() { say "FAIL $*"; sync; poweroff -f; sleep 5; }

mode=burst ip=10.99.0.2/24 peer=10.99.0.1 peermac=52:54:00:00:00:01 count=20 interval=0.5 queues=1 mib=8 iperf=0 rxdelay=0 blkro=0 pingevery=0 satsec=8 gapus=200 gapwin=250
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    jvtest.mode=*)     mode=${arg#*=} ;;
    jvtest.ip=*)       ip=${arg#*=} ;;
    jvtest.peer=*)     peer=${arg#*=} ;;
    jvtest.peermac=*)  peermac=${arg#*=} ;;
    jvtest.count=*)    count=${arg#*=} ;;
    jvtest.interval=*) interval=${arg#*=} ;;
    jvtest.queues=*)   queues=${arg#*=} ;;
    jvtest.mib=*)      mib=${arg#*=} ;;
    jvtest.iperf=*)    iperf=${arg#*=} ;;
    jvtest.rxdelay=*)  rxdelay=${arg#*=} ;;
    jvtest.blkro=*)    blkro=${arg#*=} ;;
    jvtest.pingevery=*) pingevery=${arg#*=} ;;
    jvtest.satsec=*)   satsec=${arg#*=} ;;
    jvtest.gapus=*)    gapus=${arg#*=} ;;
    jvtest.gapwin=*)   gapwin=${arg#*=} ;;
  esac
done

for m in $(cat /etc/modules.order); do
  [ -e /lib/modules/$m.ko ] || continue
  insmod /lib/modules/$m.ko || fail "insmod $m"
done

# The NIC appears asynchronously after virtio_net binds.
i=0
while [ ! -e /sys/class/net/eth0 ]; do
  i=$((i + 1)); [ $i -gt 100 ] && fail "no eth0 after 10 s"
  sleep 0.1
done
say "BOOTED mode=$mode mac=$(cat /sys/class/net/eth0/address)"
# What the guest's virtio driver negotiated: one '0'/'1' per feature bit, bit N at index N (34: RING_PACKED).
say "FEATURES $(cat /sys/class/net/eth0/device/features 2>/dev/null || echo unreadable)"

# Keep the link quiet apart from our frames: no IPv6 autoconfiguration or router solicitations.
echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null
echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6 2>/dev/null
ip link set lo up
ip link set eth0 up || fail "eth0 up"
ip addr add "$ip" dev eth0 || fail "ip addr $ip"
if [ "$queues" -gt 1 ]; then
  ethtool -L eth0 combined "$queues" || fail "ethtool -L eth0 combined $queues"
fi
# Static neighbour: no ARP exchange, so every frame we send is an ICMP echo request to peermac.
# A real peer (mode tap) answers ARP itself.
if [ "$mode" != tap ]; then
  arp -i eth0 -s "$peer" "$peermac" || fail "arp -s $peer $peermac"
fi

i=0
while [ "$(cat /sys/class/net/eth0/operstate)" != up ]; do
  i=$((i + 1)); [ $i -gt 100 ] && fail "eth0 link not up after 10 s (operstate $(cat /sys/class/net/eth0/operstate))"
  sleep 0.1
done
say "LINKUP"

rx() { cat /sys/class/net/eth0/statistics/rx_packets; }
tx() { cat /sys/class/net/eth0/statistics/tx_packets; }
# Per receive queue packet counts, "n0,n1,...", from virtio_net's ethtool statistics.
rxq() { ethtool -S eth0 2>/dev/null | awk '/rx_queue_[0-9]+_packets:/ { printf "%s%s", sep, $2; sep = "," }'; }
txq() { ethtool -S eth0 2>/dev/null | awk '/tx_queue_[0-9]+_packets:/ { printf "%s%s", sep, $2; sep = "," }'; }
# "a0,a1,..." "b0,b1,..." -> "b0-a0,b1-a1,..."
delta() { echo "$1 $2" | awk '{ n = split($1, a, ","); split($2, b, ","); for (i = 1; i <= n; i++) printf "%s%d", (i > 1 ? "," : ""), b[i] - a[i] }'; }

case "$mode" in
  burst)
    rx0=$(rx); tx0=$(tx); q0=$(rxq)
    if [ "$queues" -gt 1 ]; then
      # One sender per vCPU: virtio_net maps CPU i to transmit queue i (XPS), so every queue pair
      # carries frames (needs QEMU -smp >= queues).
      per=$(( (count + queues - 1) / queues ))
      i=0
      while [ $i -lt "$queues" ]; do
        taskset "$(printf %x $((1 << i)))" ping -q -c "$per" -i 0.05 -w $((per / 20 + 2)) -W 1 "$peer" > /dev/null 2>&1 &
        i=$((i + 1))
      done
      wait
    else
      # -w bounds the run: with a reflector the echo requests never get a reply. -W 1: without it
      # busybox ping waits 10 s for a reply after its last packet, whatever -w says.
      ping -q -c "$count" -i 0.05 -w $((count / 20 + 2)) -W 1 "$peer" > /dev/null 2>&1
    fi
    sleep 1
    rx1=$(rx); tx1=$(tx); q1=$(rxq)
    rxd=$((rx1 - rx0)); txd=$((tx1 - tx0))
    qd=$(echo "$q0 $q1" | awk '{ n = split($1, a, ","); split($2, b, ","); for (i = 1; i <= n; i++) printf "%s%d", (i > 1 ? "," : ""), b[i] - a[i] }')
    if [ "$txd" -ge "$count" ] && [ "$rxd" -ge "$count" ]; then
      say "PASS rx_delta=$rxd tx_delta=$txd rxq_delta=$qd"
    else
      say "FAIL rx_delta=$rxd tx_delta=$txd rxq_delta=$qd count=$count"
    fi
    sync
    poweroff -f
    ;;
  tap)
    ping -c 3 -w 20 "$peer" > /tmp/ping 2>&1 || fail "ping $peer: $(tail -n 2 /tmp/ping | tr '\n' ' ')"
    say "PING ok"
    if [ "$queues" -gt 1 ]; then
      q0=$(rxq); t0=$(txq)
      i=0
      while [ $i -lt "$queues" ]; do
        taskset "$(printf %x $((1 << i)))" ping -q -c 20 -i 0.05 -w 10 "$peer" > /dev/null 2>&1 &
        i=$((i + 1))
      done
      wait
      q1=$(rxq); t1=$(txq)
      say "RXQ rxq_delta=$(delta "$q0" "$q1") txq_delta=$(delta "$t0" "$t1")"
    fi
    if [ "$pingevery" != 0 ]; then
      ping -q -i "$pingevery" "$peer" > /dev/null 2>&1 &
      pinger=$!
    fi
    dd if=/dev/urandom of=/tmp/tx bs=1024 count=$((mib * 1024)) 2>/dev/null || fail "dd"
    say "TXSUM $(md5sum < /tmp/tx | cut -d' ' -f1)"
    nc "$peer" 5001 < /tmp/tx || fail "nc $peer 5001 (send)"
    rm -f /tmp/tx
    # rxdelay: nothing is read for that long, so the received data waits in the socket buffer meanwhile
    { nc "$peer" 5002 || echo nc-failed > /tmp/rxfail; } | { sleep "$rxdelay"; cat; } > /tmp/rx
    [ -e /tmp/rxfail ] && fail "nc $peer 5002 (receive)"
    say "RXSUM $(md5sum < /tmp/rx | cut -d' ' -f1) bytes=$(wc -c < /tmp/rx)"
    rm -f /tmp/rx
    [ -n "${pinger:-}" ] && kill "$pinger"
    if [ "$iperf" = 1 ]; then
      iperf3 -c "$peer" -t 3 > /tmp/iperf 2>&1 || fail "iperf3: $(tail -n 3 /tmp/iperf | tr '\n' ' ')"
      say "IPERF $(grep receiver /tmp/iperf | tr -s ' ')"
    fi
    say "PASS"
    sync
    poweroff -f
    ;;
  blk)
    # A vhost-user-blk disk next to the NIC: 1 MiB of random data written buffered (then fsync) at 0 and
    # with O_DIRECT at 1 MiB, read back with O_DIRECT and through the page cache, and once more with one
    # 1 MiB O_DIRECT read (its 256 pages exceed max_segments = seg_max, so Linux sends requests of
    # seg_max segments, each in one indirect table of ring-size entries); the host compares the file
    # with the md5 printed. jvtest.blkro=1: the disk is read-only and a write must fail.
    i=0
    while [ ! -e /dev/vda ]; do
      i=$((i + 1)); [ $i -gt 100 ] && fail "no /dev/vda after 10 s"
      sleep 0.1
    done
    say "BLK queues=$(ls /sys/block/vda/mq | wc -l) ro=$(cat /sys/block/vda/ro) sectors=$(cat /sys/block/vda/size) maxseg=$(cat /sys/block/vda/queue/max_segments)"
    if [ "$blkro" = 1 ]; then
      dd if=/dev/zero of=/dev/vda bs=4k count=1 oflag=direct 2>/dev/null && fail "a write to the read-only disk succeeded"
      sum=$(dd if=/dev/vda bs=64k count=16 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
      say "PASS blk ro md5=$sum"
      sync; poweroff -f
    fi
    dd if=/dev/urandom of=/tmp/a bs=64k count=16 2>/dev/null || fail "urandom"
    want=$(md5sum < /tmp/a | cut -d' ' -f1)
    dd if=/tmp/a of=/dev/vda bs=64k count=16 conv=fsync 2>/dev/null || fail "buffered write"
    dd if=/tmp/a of=/dev/vda bs=64k seek=16 count=16 oflag=direct 2>/dev/null || fail "O_DIRECT write"
    d1=$(dd if=/dev/vda bs=64k count=16 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
    echo 3 > /proc/sys/vm/drop_caches
    d2=$(dd if=/dev/vda bs=64k skip=16 count=16 2>/dev/null | md5sum | cut -d' ' -f1)
    [ "$d1" = "$want" ] || fail "O_DIRECT read of the buffered write: $d1, wrote $want"
    [ "$d2" = "$want" ] || fail "buffered read of the O_DIRECT write: $d2, wrote $want"
    d3=$(dd if=/dev/vda bs=1048576 skip=1 count=1 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
    [ "$d3" = "$want" ] || fail "one 1 MiB O_DIRECT read (ring-size indirect tables): $d3, wrote $want"
    say "PASS blk md5=$want"
    # Saturation, bounded in time rather than in work (a TCG guest's disk rounds take seconds each on a
    # loaded machine): for $satsec seconds two O_DIRECT loops keep the disk busy (reads of its first
    # 2 MiB, rewrites of its third MiB with /tmp/a) while one echo every 0.25 s crosses the NIC.
    # "JVTEST SAT rx_delta=R tx_delta=T pings=P reads=N writes=M cs=C": every echo sent (T, one per ping
    # run P) must come back (R), and the disk must have been busy throughout (N, M rounds done in C
    # centiseconds). A "JVTEST PING" line per ping says what the NIC counted so far.
    now() { cut -d' ' -f1 /proc/uptime | tr -d .; }
    t0=$(now); end=$((t0 + satsec * 100))
    ( n=0; while [ "$(now)" -lt $end ]; do dd if=/dev/vda of=/dev/null bs=256k count=8 iflag=direct 2>/dev/null || exit 1; n=$((n + 1)); done; echo $n > /tmp/reads ) &
    ( n=0; while [ "$(now)" -lt $end ]; do dd if=/tmp/a of=/dev/vda bs=64k seek=32 count=16 oflag=direct 2>/dev/null || exit 1; n=$((n + 1)); done; echo $n > /tmp/writes ) &
    rx0=$(rx); tx0=$(tx); pings=0
    while [ "$(now)" -lt $end ]; do
      # -W 1, in the background: the reflector returns our echo request and never a reply, and busybox
      # ping then waits -W (default 10 s) after its last packet whatever -w says; that made each round
      # of the old count-bounded loop take 10 s, and the test time out
      ping -q -c 1 -W 1 "$peer" > /dev/null 2>&1 &
      pings=$((pings + 1))
      sleep 0.25
      say "PING $pings rx_delta=$(($(rx) - rx0)) tx_delta=$(($(tx) - tx0))"
    done
    wait
    sleep 0.5 # the last echo's way back
    say "SAT rx_delta=$(($(rx) - rx0)) tx_delta=$(($(tx) - tx0)) pings=$pings reads=$(cat /tmp/reads 2>/dev/null || echo failed) writes=$(cat /tmp/writes 2>/dev/null || echo failed) cs=$(($(now) - t0))"
    sync; poweroff -f
    ;;
  gap)
    [ -x /sbin/gapprobe ] || fail "no /sbin/gapprobe in the image (the host had no gcc)"
    gapprobe eth0 "$gapus" "$gapwin" || fail "gapprobe exited with status $?"
    ;;
  periodic)
    while true; do
      # with queues>1 one frame from every vCPU, i.e. on every transmit queue (XPS, as in burst mode)
      i=0
      while [ $i -lt "$queues" ]; do
        taskset "$(printf %x $((1 << i)))" ping -q -c 1 -w 1 -W 1 "$peer" > /dev/null 2>&1 &
        i=$((i + 1))
      done
      sleep "$interval"
      say "RX rx_packets=$(rx) tx_packets=$(tx)"
      [ "$queues" -gt 1 ] && say "RXQ rxq_packets=$(rxq)"
    done
    ;;
  *)
    fail "unknown jvtest.mode=$mode"
    ;;
esac
INIT
chmod 755 "$stage/init"

(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet) | gzip -1 > "$out/initramfs.cpio.gz.tmp"
mv "$out/initramfs.cpio.gz.tmp" "$out/initramfs.cpio.gz"
cp "/boot/vmlinuz-$kver" "$out/vmlinuz"
echo "$kver" > "$out/kernel-version"
