#!/usr/bin/env bash
# The project's one test command: installs the test peers if missing, then builds and runs every
# unit and integration test. Extra arguments go to Maven, e.g.
#   scripts/test.sh -Djvhost.it.backend=dpdk     # prove the IT harness against DPDK's own back-end
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
exec mvn -B verify "$@"
