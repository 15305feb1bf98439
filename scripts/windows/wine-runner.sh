#!/usr/bin/env bash
# A cargo runner for x86_64-pc-windows-gnu: runs a Windows executable (a test binary,
# a doctest, anything `cargo run` builds) under Wine and exits with its status.
#
#   CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$PWD/scripts/windows/wine-runner.sh" \
#     cargo test --target x86_64-pc-windows-gnu -p wavecast-client
#
# - Puts the bcryptprimitives.dll stand-in Wine 8 needs beside the .exe (building it
#   with mingw-w64 from scripts/windows/bcryptprimitives.c when missing).
# - Runs it in a Wine prefix of its own, kept between runs (making one takes several
#   seconds): `wine-prefix` in the `x86_64-pc-windows-gnu/` folder the .exe was built
#   in, or for an .exe built elsewhere (doctests are built in a temporary folder) in
#   `${CARGO_TARGET_DIR:-target}/x86_64-pc-windows-gnu/` of this repository. One run
#   at a time uses it (a lock beside it).
# - Afterwards, and on Ctrl-C or SIGTERM, stops that prefix's wineserver and waits
#   for it, so that nothing it started is left running.
set -euo pipefail

wine=/usr/lib/wine/wine64
wineserver=/usr/lib/wine/wineserver64
triple=x86_64-pc-windows-gnu
# No message boxes offering to download Wine Mono or Gecko while a prefix is made.
export WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="

if [ $# -eq 0 ]; then
  echo "usage: $0 PROGRAM.exe [ARGUMENT...]" >&2
  exit 2
fi
exe=$(realpath "$1")
shift
exe_dir=$(dirname "$exe")
scripts=$(dirname "$(realpath "$0")")

shim="$exe_dir/bcryptprimitives.dll"
if [ ! -f "$shim" ]; then
  # Built aside and renamed in place, so a run cut short leaves no partial DLL.
  x86_64-w64-mingw32-gcc -shared -O2 -o "$shim.tmp-$$" "$scripts/bcryptprimitives.c"
  mv -f "$shim.tmp-$$" "$shim"
fi

# The target folder's triple folder: the nearest ancestor of the .exe named after the
# triple, else this repository's.
triple_dir=""
dir=$exe_dir
while [ "$dir" != / ]; do
  if [ "$(basename "$dir")" = "$triple" ]; then
    triple_dir=$dir
    break
  fi
  dir=$(dirname "$dir")
done
if [ -z "$triple_dir" ]; then
  target=${CARGO_TARGET_DIR:-target}
  case $target in
    /*) ;;
    *) target="$scripts/../../$target" ;;
  esac
  triple_dir=$(realpath -m "$target/$triple")
  mkdir -p "$triple_dir"
fi
prefix="$triple_dir/wine-prefix"

# The prefix whose server is stopped on exit (the one being made, then the one run
# in), and a prefix being made, removed on exit.
server=""
fresh=""
stop_server() {
  [ -n "$server" ] || return 0
  WINEPREFIX=$server "$wineserver" -k 2>/dev/null || true
  WINEPREFIX=$server "$wineserver" -w 2>/dev/null || true
}
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  stop_server
  [ -z "$fresh" ] || rm -rf "$fresh"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

exec 9>"$prefix.lock"
flock 9
if [ ! -d "$prefix" ]; then
  # Made aside and renamed in place, so a run cut short leaves no partial prefix.
  fresh="$prefix.tmp-$$"
  server=$fresh
  WINEPREFIX=$fresh "$wine" wineboot --init 9>&- >/dev/null 2>&1
  stop_server
  mv "$fresh" "$prefix"
  fresh=""
fi

# In the background, so that a signal is handled at once: the server's stop ends
# the program and whatever it started.
server=$prefix
WINEPREFIX=$prefix "$wine" "$exe" "$@" <&0 9>&- &
status=0
wait $! || status=$?
exit "$status"
