#!/usr/bin/env bash
# Threads, resident memory and time until ready for N loopback devices in one jvhost, N = 10, 100,
# 1000 (or the counts given as arguments). Each count runs host's ScaleIT once: jvhost serve with N
# --device arguments from an @argfile, then a Java front-end (ScriptedFrontend) negotiates every
# device (features, memory table, one enabled ring, all acknowledged with REPLY_ACK), then SIGTERM.
# Prints one SCALE-RESULT line per count:
#   threads, rss_mib    /proc/PID/status Threads and VmRSS after every device negotiated
#   listening_ms        from exec until jvhost logs "serving N device(s)" (every socket listening)
#   negotiated_ms       from exec until the front-end finished negotiating the last device
#   sigterm_to_exit_ms  from SIGTERM until the process exited (all socket files removed)
set -euo pipefail
cd "$(dirname "$0")/.."
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(10 100 1000)
for n in "${counts[@]}"; do
  mvn -B -q -pl host -am verify -Dtest=none -Dsurefire.failIfNoSpecifiedTests=false \
      -Dit.test=ScaleIT -Dfailsafe.failIfNoSpecifiedTests=false -Djvhost.scale.devices="$n" 2>&1 \
    | grep -o "SCALE-RESULT.*"
done
