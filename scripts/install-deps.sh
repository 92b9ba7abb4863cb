#!/usr/bin/env bash
# Installs, from Debian 12's own archive, everything the build and the integration tests need:
# the JDK, Maven and the Debian package's tools, the real vhost-user peers the tests drive (QEMU, DPDK
# testpmd), the guest kernel and userland, and the host-side network tools. Idempotent and quiet when
# nothing is missing: `apt-get update` runs only when at least one package has to be installed.
set -euo pipefail

PACKAGES=(
  openjdk-17-jdk-headless maven         # build
  asciidoctor git                       # build: man pages to troff (packaging), the commit --version shows
  adduser man-db systemd                # the .deb's test: postinst's adduser, systemd-analyze verify (man: links)
  qemu-system-x86                       # QEMU 7.2: a real VMM front-end (-netdev vhost-user)
  dpdk-dev                              # dpdk-testpmd: virtio_user front-end and net_vhost reference back-end
  linux-image-amd64                     # guest kernel; virtio drivers are modules under /lib/modules
  busybox-static cpio gzip xz-utils     # guest initramfs
  kmod                                  # modinfo/depmod for the guest image builder
  iproute2 ethtool iperf3 socat         # host-side network tools
  gcc libc6-dev                         # C helpers: the guest's static gap probe, bench-net.sh's tapgen
  coreutils util-linux procps           # stdbuf, taskset, timeout, pkill-free process control
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [[ "$status" == installed ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install-deps: missing packages ${missing[*]}; run this script as root (no sudo found)" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
# --no-install-recommends keeps QEMU from pulling in a desktop stack.
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
