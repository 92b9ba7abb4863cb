#!/usr/bin/env bash
# Builds the integration tests' guest: OUTDIR/vmlinuz (the kernel of the installed Debian package
# linux-image-amd64, NOT the running host's kernel) and OUTDIR/initramfs.cpio.gz, a busybox userland
# whose /init loads the virtio-net module chain, configures eth0 from the kernel command line, sends
# frames to a reflecting back-end and reports what came back on the serial console.
#
# Kernel command line understood by /init (all optional except jvtest.mode):
#   jvtest.mode=burst|periodic   burst: send COUNT frames, print "JVTEST PASS rx_delta=D" or
#                                "JVTEST FAIL ...", power off. periodic: send one frame per INTERVAL
#                                seconds forever, printing "JVTEST RX rx_packets=R tx_packets=T".
#   jvtest.ip=10.99.0.2/24  jvtest.peer=10.99.0.1  jvtest.peermac=52:54:00:00:00:01
#   jvtest.count=20  jvtest.interval=0.5
#   jvtest.queues=1              >1: ethtool -L eth0 combined N, and burst mode sends from N vCPUs
#                                (one per transmit queue); the verdict adds rxq_delta=r0,r1,...
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
MODULES=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net)

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

# ethtool (for multi-queue guests) with its shared libraries, if the host has it.
if [[ -x /usr/sbin/ethtool ]]; then
  cp /usr/sbin/ethtool "$stage/sbin/ethtool"
  for lib in $(ldd /usr/sbin/ethtool | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
    mkdir -p "$stage$(dirname "$lib")"
    cp -L "$lib" "$stage$lib"
  done
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

mode=burst ip=10.99.0.2/24 peer=10.99.0.1 peermac=52:54:00:00:00:01 count=20 interval=0.5 queues=1
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    jvtest.mode=*)     mode=${arg#*=} ;;
    jvtest.ip=*)       ip=${arg#*=} ;;
    jvtest.peer=*)     peer=${arg#*=} ;;
    jvtest.peermac=*)  peermac=${arg#*=} ;;
    jvtest.count=*)    count=${arg#*=} ;;
    jvtest.interval=*) interval=${arg#*=} ;;
    jvtest.queues=*)   queues=${arg#*=} ;;
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
arp -i eth0 -s "$peer" "$peermac" || fail "arp -s $peer $peermac"

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

case "$mode" in
  burst)
    rx0=$(rx); tx0=$(tx); q0=$(rxq)
    if [ "$queues" -gt 1 ]; then
      # One sender per vCPU: virtio_net maps CPU i to transmit queue i (XPS), so every queue pair
      # carries frames (needs QEMU -smp >= queues).
      per=$(( (count + queues - 1) / queues ))
      i=0
      while [ $i -lt "$queues" ]; do
        taskset "$(printf %x $((1 << i)))" ping -q -c "$per" -i 0.05 -w $((per / 20 + 2)) "$peer" > /dev/null 2>&1 &
        i=$((i + 1))
      done
      wait
    else
      # -w bounds the run: with a reflector the echo requests never get a reply.
      ping -q -c "$count" -i 0.05 -w $((count / 20 + 2)) "$peer" > /dev/null 2>&1
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
  periodic)
    while true; do
      ping -q -c 1 -w 1 "$peer" > /dev/null 2>&1 &
      sleep "$interval"
      say "RX rx_packets=$(rx) tx_packets=$(tx)"
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
