#!/usr/bin/env bash
# The hot upgrade's traffic gap (issue 14), round by round, for one or more jvhost jars interleaved
# (round 1: jar A, jar B...; round 2: jar A, jar B...), from HotUpgradeIT's proofs:
#   - testpmd's io round trip through one loopback device across a handover (proof 1);
#   - N loopback devices, each connected, handed over at once (proof 3; N=1000 by default);
#   - with --reconnect, also the gap as a QEMU guest sees it (HotUpgradeGuestIT; scripts/lib/gapprobe.c in
#     the guest sends a frame every 200 us through the loopback device and times the reflected ones):
#     its baseline (no handover), across a handover, and across QEMU's reconnect path (kill and restart
#     jvhost) under the same guest, once per jar and round. handover_gap_ms is the issue's figure; it
#     reads nothing from jvhost's logs.
# The testpmd and 1,000-device gaps are what those tests print from the logs: from the old process's
# "paused" line to the new one's last "runs again" line (gap_ms), and to where that connection's last
# ring started on its worker, which the line reports (ring_gap_ms). The phases of each handover, from
# the two processes' logs, follow each result.
#
# Usage (from the repository root, after `mvn -pl host -am package -DskipTests` for the test classes):
#   scripts/bench-upgrade.sh [-r ROUNDS] [-n DEVICES] [--reconnect] JAR...
# On a shared machine run it under /work/bin/bench-lock (one round of two jars takes ~3 min).
set -euo pipefail
rounds=2
devices=1000
reconnect=false
jars=()
while [ $# -gt 0 ]; do
  case "$1" in
    -r) rounds=$2; shift 2 ;;
    -n) devices=$2; shift 2 ;;
    --reconnect) reconnect=true; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) jars+=("$(readlink -f "$1")"); shift ;;
  esac
done
[ ${#jars[@]} -gt 0 ] || { echo "give at least one jvhost jar" >&2; exit 2; }
cd "$(dirname "$0")/.."
out=$(mktemp -d /tmp/bench-upgrade.XXXXXX)
tests='HotUpgradeIT#testpmdRoundTripCrossesTheHandover+thousandConnectedDevicesAreHandedOver'
$reconnect && tests="$tests,HotUpgradeGuestIT#loopbackGuestAcrossAHandoverThenQemusReconnectPathForComparison"
echo "# $(date -u +%FT%TZ) rounds=$rounds devices=$devices load: $(cut -d' ' -f1-3 /proc/loadavg); logs in $out"
for r in $(seq 1 "$rounds"); do
  for jar in "${jars[@]}"; do
    log=$out/round$r-$(basename "$jar" .jar).log
    timeout 600 nice mvn -B -o -q -pl host -am verify -Dtest=none -Dsurefire.failIfNoSpecifiedTests=false \
      -Dit.test="$tests" -Djvhost.jar="$jar" -Djvhost.upgrade.devices="$devices" > "$log" 2>&1 || echo "# round $r $jar: FAILED (see $log)"
    grep -h 'UPGRADE-RESULT' "$log" | sed "s|^|round=$r jar=$(basename "$jar") |"
    for d in host/target/it-logs/HotUpgradeIT.testpmdRoundTripCrossesTheHandover \
             host/target/it-logs/HotUpgradeIT.thousandConnectedDevicesAreHandedOver; do
      [ -f "$d/jvhost-old.log" ] || continue
      grep -h -o -- "-jar [^ ]*" "$d/jvhost-new.cmd" | sed "s|^|    new: |"
      grep -h -E 'INFO (Takeover|Handover) - ' "$d/jvhost-old.log" "$d/jvhost-new.log" | grep -v 'handover socket' \
        | cut -d' ' -f1,5- | sort | sed 's|^|    |'
      grep -h 'runs again' "$d/jvhost-new.log" | tail -1 | cut -d' ' -f1 | sed 's|^|    last ring runs again: |'
      cp -r "$d" "$out/round$r-$(basename "$jar" .jar)-$(basename "$d")"
    done
  done
done
