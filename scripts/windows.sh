#!/usr/bin/env bash
# Builds wavecast-update.exe and wavecast.exe for x86_64-pc-windows-gnu with Debian's
# mingw-w64 (the dev profile, as the tests use), and beside them the
# bcryptprimitives.dll stand-in Wine 8 needs to start any Rust program (see
# scripts/windows/bcryptprimitives.c); and, as scripts/test.sh does for Linux, a
# newer wavecast-update.exe reporting 0.99.0 in <target>/next/ for the self-update
# test. Installs the Rust target if missing;
# scripts/install-deps.sh installs mingw-w64 and Wine. Prints the folder the .exe
# files are in, which tests/e2e/windows.rs finds on its own.
#
#   bash scripts/windows.sh
set -euo pipefail
cd "$(dirname "$0")/.."

triple=x86_64-pc-windows-gnu
rustup target list --installed | grep -qx "$triple" || rustup target add "$triple" >&2
# Without debug info, as the tests run them rather than debug them: a tenth of the size.
CARGO_PROFILE_DEV_DEBUG=0 cargo build --locked --target "$triple" \
  -p wavecast-client-cli --bin wavecast-update -p wavecast-publisher-cli --bin wavecast >&2
target="${CARGO_TARGET_DIR:-target}"
WAVECAST_CLIENT_VERSION=0.99.0 CARGO_PROFILE_DEV_DEBUG=0 cargo build --locked --target "$triple" \
  -p wavecast-client-cli --bin wavecast-update --target-dir "$target/next" >&2
out="$target/$triple/debug"
x86_64-w64-mingw32-gcc -shared -O2 -o "$out/bcryptprimitives.dll" \
  scripts/windows/bcryptprimitives.c
echo "$out"
