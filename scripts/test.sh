#!/usr/bin/env bash
# The test command: installs what the tests need on a fresh Debian machine, builds the
# binaries the end-to-end tests drive, runs every test in the workspace, then the
# client's unit tests built for Windows, under Wine (scripts/windows-unit-tests.sh).
#
#   bash scripts/test.sh            # all tests
#   bash scripts/test.sh attacks    # extra arguments filter tests, as with cargo test
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

bash scripts/install-deps.sh

cargo build --workspace --lib --bins --examples --locked
# A newer wavecast-update (it reports 0.99.0) for the self-update tests to publish as
# the updater: one more build of the client, in its own target directory so the main
# one is not rebuilt, without debug info so it is small to package and download.
WAVECAST_CLIENT_VERSION=0.99.0 CARGO_PROFILE_DEV_DEBUG=0 cargo build --locked \
    -p wavecast-client-cli --bin wavecast-update --target-dir "${CARGO_TARGET_DIR:-target}/next"
# The Windows builds the Windows end-to-end tests run under Wine.
bash scripts/windows.sh >/dev/null
log=$(mktemp)
session=$(mktemp)
trap 'rm -f "$log" "$session"' EXIT

# The processes of session $1 still running; zombies are left out, as they only wait
# for init to collect their exit status.
# shellcheck disable=SC2317 # called through kill_leftovers
running_in_session() {
  ps -o pid=,stat=,args= --sid "$1" | awk '$2 !~ /^Z/' || true
}

# Every test must stop the processes it starts (servers and their workers, browsers).
# The suite runs in a session of its own, so that whatever it leaves running is
# found afterwards (unless it started a session of its own, as daemons do): it is
# listed, killed, and fails the run. Its output goes to the log, which `tail` shows.
setsid --wait bash -c 'echo "$$" >"$0" && exec "$@"' "$session" \
  cargo test --workspace --locked -- "$@" >"$log" 2>&1 &
suite=$!
tail -n +1 -f --pid="$suite" "$log" &
follower=$!
# The suite has no terminal, so Ctrl-C no longer reaches it: pass it on, as SIGTERM
# (a command started in the background ignores SIGINT).
interrupted=false
trap 'interrupted=true; kill -TERM -- "-$(cat "$session")" 2>/dev/null' INT TERM
status=0
wait "$suite" || status=$?
# A trapped signal ends `wait` early: wait for the suite to end.
while $interrupted && kill -0 "$suite" 2>/dev/null; do
  status=0
  wait "$suite" || status=$?
done
wait "$follower" || true
if ! kill_leftovers "the tests" running_in_session "$(cat "$session")"; then
  [ "$status" -ne 0 ] || status=1
fi
echo "tests: $(test_counts "$log")"
# The client's unit tests built for Windows, under Wine. Not in a session as above:
# Wine's server and processes start sessions of their own, so the script stops and
# checks them itself.
if ! $interrupted; then
  windows_status=0
  bash scripts/windows-unit-tests.sh "$@" || windows_status=$?
  [ "$status" -ne 0 ] || status=$windows_status
fi
exit "$status"
