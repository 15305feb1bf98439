#!/usr/bin/env bash
# The test command: installs what the tests need on a fresh Debian machine, builds the
# binaries the end-to-end tests drive, and runs every test in the workspace.
#
#   bash scripts/test.sh            # all tests
#   bash scripts/test.sh attacks    # extra arguments filter tests, as with cargo test
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

cargo build --workspace --bins --locked
# A newer wavecast-update (it reports 0.99.0) for the self-update tests to publish as
# the updater: one more build of the client, in its own target directory so the main
# one is not rebuilt, without debug info so it is small to package and download.
WAVECAST_CLIENT_VERSION=0.99.0 CARGO_PROFILE_DEV_DEBUG=0 cargo build --locked \
    -p wavecast-client --bin wavecast-update --target-dir "${CARGO_TARGET_DIR:-target}/next"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked -- "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -Eo 'test result: [A-Za-z]+\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo 'test result: [A-Za-z]+\. [0-9]+ passed; [0-9]+ failed' "$log" | awk '{s += $6} END {print s + 0}')
echo "tests: $passed passed, $failed failed"
exit "$status"
