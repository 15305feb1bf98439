#!/usr/bin/env bash
# The client's unit tests and doctests (wavecast-client) built for
# x86_64-pc-windows-gnu and run under Wine, through the cargo runner
# scripts/windows/wine-runner.sh (a Wine prefix kept in the target folder, whose
# server it stops after each test binary). Ends with how many passed; fails if a test
# fails or if anything is left running with that prefix (it is listed and killed).
# Extra arguments filter tests, as with cargo test.
# scripts/install-deps.sh installs what it needs (mingw-w64, Wine, the Rust target).
#
#   bash scripts/windows-unit-tests.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

triple=x86_64-pc-windows-gnu
# Where the runner keeps its prefix for the test binaries and doctests built here.
prefix=$(realpath -m "${CARGO_TARGET_DIR:-target}/$triple/wine-prefix")
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# The processes still running with the prefix (zombies left out).
# shellcheck disable=SC2317 # called through kill_leftovers
left_in_prefix() {
  local environ pid
  for environ in /proc/[0-9]*/environ; do
    grep -qzxF "WINEPREFIX=$prefix" "$environ" 2>/dev/null || continue
    pid=${environ#/proc/}
    pid=${pid%/environ}
    ps -o pid=,stat=,args= -p "$pid" | awk '$2 !~ /^Z/' || true
  done
}

started=$SECONDS
status=0
# Without debug info, as scripts/windows.sh builds: a tenth of the size on disk.
CARGO_PROFILE_DEV_DEBUG=0 \
  CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$PWD/scripts/windows/wine-runner.sh" \
  cargo test --locked --target "$triple" -p wavecast-client -- "$@" 2>&1 | tee "$log" \
  || status=$?

if ! kill_leftovers "the Windows unit tests" left_in_prefix; then
  [ "$status" -ne 0 ] || status=1
fi
echo "Windows unit tests (wavecast-client, under Wine): $(test_counts "$log") in $((SECONDS - started)) s"
exit "$status"
