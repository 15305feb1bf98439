#!/usr/bin/env bash
# Tests scripts/check-map.py: a map whose paths and names all resolve passes; a path
# that is gone, a name nothing defines, each fails and is named; paths inside an
# install root or a site, commands and plain words are not checked.
#
#   bash scripts/check-map-selftest.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d -t wavecast-map-selftest-XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0

# expect STATUS PATTERN: checks the map on stdin; the exit status must be STATUS and
# the output must have a line matching PATTERN (grep -E).
expect() {
  local want=$1 pattern=$2 status=0
  cat >"$work/map.md"
  python3 "$repo/scripts/check-map.py" "$work/map.md" >"$work/out" 2>&1 || status=$?
  if [[ $status != "$want" ]] || ! grep -Eq -- "$pattern" "$work/out"; then
    echo "FAIL: wanted status $want and /$pattern/, got status $status:"
    sed 's/^/  /' "$work/out"
    failures=$((failures + 1))
  fi
}

expect 0 '^ok ' <<'MAP'
The pipeline is `client/src/install/` and `plan_release` makes an `UpdatePlan`
(`Cache::release_indexes`, `Error::Net`, `install::commit::recover`). A root holds
`ROOT/current` and a site `channels/<channel>.json`; run `cargo test`; a plain `word`.
MAP

expect 1 'no such path `client/src/install/gone\.rs`' <<'MAP'
See `client/src/install/gone.rs`.
MAP

expect 1 'nothing defines `Cache::release_indices`' <<'MAP'
See `Cache::release_indices`.
MAP

expect 1 'nothing defines `NoSuchType`' <<'MAP'
See `NoSuchType`.
MAP

expect 1 'no such path `no-such-crate/src/`' <<'MAP'
See `no-such-crate/src/`.
MAP

if ((failures)); then
  echo "check-map selftest: $failures failure(s)"
  exit 1
fi
echo "check-map selftest: ok"
