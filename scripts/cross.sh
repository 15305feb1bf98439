#!/usr/bin/env bash
# Cross-builds both binaries (`wavecast-update`, `wavecast`) for the platforms CI does
# not run on: macOS on Apple silicon and on Intel, and Linux on aarch64 (devices, ARM
# servers). Zig is the C compiler and linker (`cargo zigbuild`), so no macOS SDK is
# needed; the macOS builds are checked for their format, never run. The aarch64 Linux
# build is run under qemu-user (`--version`).
#
#   bash scripts/cross.sh                          # every target
#   bash scripts/cross.sh aarch64-apple-darwin     # some of them
#
# Installs what it needs when missing: zig (the `ziglang` package from PyPI),
# cargo-zigbuild, the Rust targets, `file`, and qemu-user with the aarch64 C library
# (apt-get). Builds the debug profile into `${CARGO_TARGET_DIR:-target}/<target>/debug/`,
# which CI can cache, prints how long each target took, checks each executable with
# `file`, and ends with a table of the executables and their sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(aarch64-apple-darwin x86_64-apple-darwin aarch64-unknown-linux-gnu)
binaries=(wavecast-update wavecast)
target_dir=${CARGO_TARGET_DIR:-target}

# What `file` must say of an executable for each target.
expected_format() {
  case $1 in
    aarch64-apple-darwin) echo 'Mach-O 64-bit arm64 executable' ;;
    x86_64-apple-darwin) echo 'Mach-O 64-bit x86_64 executable' ;;
    aarch64-unknown-linux-gnu) echo 'ELF 64-bit LSB .*executable, ARM aarch64' ;;
    *)
      echo "error: no expected format for target $1" >&2
      return 1
      ;;
  esac
}

missing=()
command -v file >/dev/null 2>&1 || missing+=(file)
command -v qemu-aarch64 >/dev/null 2>&1 || missing+=(qemu-user)
[ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || missing+=(libc6-arm64-cross)
apt_install "${missing[@]}"
# cargo-zigbuild finds zig on the PATH, or as `python3 -m ziglang`.
if ! command -v zig >/dev/null 2>&1 && ! python3 -m ziglang version >/dev/null 2>&1; then
  pip_install ziglang
fi
if ! command -v cargo-zigbuild >/dev/null 2>&1; then
  echo "installing: cargo-zigbuild (cargo install)" >&2
  cargo install --quiet --locked cargo-zigbuild
fi
installed_targets=$(rustup target list --installed)
for target in "${targets[@]}"; do
  expected_format "$target" >/dev/null
  grep -qx "$target" <<<"$installed_targets" || rustup target add "$target"
done

# rustc warns, for each macOS link, that `xcrun` cannot find an SDK: zig links
# without one, so that warning is expected.
timings=()
for target in "${targets[@]}"; do
  echo "building for $target" >&2
  started=$SECONDS
  # Without debug info: the builds are checked, not debugged, and a disk holds
  # four targets' worth of debug info badly.
  CARGO_PROFILE_DEV_DEBUG=0 cargo zigbuild --locked --target "$target" \
    -p wavecast-client-cli --bin wavecast-update \
    -p wavecast-publisher-cli --bin wavecast
  timings+=("$target $((SECONDS - started))")
  echo "built for $target in $((SECONDS - started)) s" >&2
done

failed=0
rows=()
for target in "${targets[@]}"; do
  format=$(expected_format "$target")
  for binary in "${binaries[@]}"; do
    path="$target_dir/$target/debug/$binary"
    description=$(file -b "$path")
    if ! grep -Eq "^$format" <<<"$description"; then
      echo "error: $path is not a $format: $description" >&2
      failed=1
    fi
    rows+=("$target $binary $(stat -c %s "$path") $path")
  done
done

# The aarch64 Linux build runs under qemu, with the aarch64 C library of
# libc6-arm64-cross as its root for the loader and libc.
if [[ " ${targets[*]} " == *" aarch64-unknown-linux-gnu "* ]]; then
  for binary in "${binaries[@]}"; do
    path="$target_dir/aarch64-unknown-linux-gnu/debug/$binary"
    if answer=$(qemu-aarch64 -L /usr/aarch64-linux-gnu "$path" --version); then
      echo "qemu-aarch64 $binary --version: $answer" >&2
    else
      echo "error: $path --version failed under qemu-aarch64" >&2
      failed=1
    fi
  done
fi

echo
printf '%-28s %-16s %10s  %s\n' target binary size path
for row in "${rows[@]}"; do
  read -r target binary size path <<<"$row"
  printf '%-28s %-16s %7s MiB  %s\n' "$target" "$binary" \
    "$(awk -v bytes="$size" 'BEGIN { printf "%.1f", bytes / 1048576 }')" "$path"
done
echo
for timing in "${timings[@]}"; do
  read -r target seconds <<<"$timing"
  printf '%-28s built in %d s\n' "$target" "$seconds"
done
exit "$failed"
