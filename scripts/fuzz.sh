#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS_PER_TARGET seconds (default 60),
# one after the other, from the committed seeds (fuzz/seeds/TARGET) and the local
# corpus (fuzz/corpus/TARGET, git-ignored, grows between runs). Prints each target's
# executions, CPU time, coverage and result, and exits non-zero if any target found a
# crash; the input that crashed is kept in fuzz/artifacts/TARGET/.
#
#   bash scripts/fuzz.sh          # 60 s per target
#   bash scripts/fuzz.sh 900      # 15 minutes per target
#   FUZZ_SANITIZER=address bash scripts/fuzz.sh   # with AddressSanitizer (nightly only)
#
# Installs cargo-fuzz if missing. Builds with the nightly toolchain when rustup has
# one, else with the default toolchain and RUSTC_BOOTSTRAP=1. The default sanitizer
# is none: wavecast has no unsafe code, and AddressSanitizer runs these targets about
# five times slower.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${1:-60}
targets=(manifest root_chain decide unpack pack)

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "installing: cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

sanitizer=${FUZZ_SANITIZER:-none}
if rustup run nightly rustc --version >/dev/null 2>&1; then
  fuzz=(cargo +nightly fuzz)
else
  echo "no nightly toolchain: building with RUSTC_BOOTSTRAP=1 and no sanitizer" >&2
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
  sanitizer=none
fi
build=(--sanitizer "$sanitizer")

"${fuzz[@]}" build "${build[@]}"

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
TIMEFORMAT='%U %S'
status=0
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  case $target in
    decide) max_len=4096 ;;
    *) max_len=16384 ;;
  esac
  options=(-max_total_time="$seconds" -rss_limit_mb=2048 -max_len="$max_len" -timeout=10)
  if [ -f "$target.dict" ]; then
    options+=(-dict="$target.dict")
  fi
  log="$logs/$target.log"
  if { time "${fuzz[@]}" run "${build[@]}" "$target" "corpus/$target" "seeds/$target" \
    -- "${options[@]}" >"$log" 2>&1; } 2>"$log.time"; then
    result=ok
  else
    result=FAILED
    status=1
  fi
  runs=$(grep -Eo '^#[0-9]+' "$log" | tail -n 1 | tr -d '#' || true)
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1 | awk '{print $2}' || true)
  cpu=$(awk '{printf "%.0f", $1 + $2}' "$log.time")
  echo "fuzz $target: ${runs:-0} executions, ${cpu} s CPU, cov ${cov:-?}: $result"
  if [ "$result" != ok ]; then
    tail -n 60 "$log" >&2
  fi
done
exit "$status"
