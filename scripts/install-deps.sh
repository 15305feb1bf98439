#!/usr/bin/env bash
# Installs the real servers and tools the tests run against, if missing:
# nginx (the CDN stand-in), python3 (its http.server, and moto's interpreter), the
# stock minisign CLI (signature interoperability), chromium (renders the status page
# headless), the stock delta tools the delta benchmark compares against (zstd,
# bsdiff, xdelta3), what the README's examples use (git, rsync, jq;
# scripts/test-readme.sh runs them), GNU time (the peak memory of a refused manifest,
# in the limits tests), mingw-w64 and Wine (the Windows builds and the Windows
# client's end-to-end tests), a C compiler (the C ABI test compiles tests/c/update.c;
# Rust links with it too), Mono's C# compiler and runtime (the README's C# program
# is compiled and run against the C ABI), moto_server (the S3 stand-in, from PyPI), and cargo-deb
# (scripts/deb.sh builds the client's Debian package with it).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
command -v minisign >/dev/null 2>&1 || missing+=(minisign)
command -v tar >/dev/null 2>&1 || missing+=(tar)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -x /usr/bin/time ] || missing+=(time)
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || missing+=(gcc-mingw-w64-x86-64)
command -v mcs >/dev/null 2>&1 || missing+=(mono-mcs)
[ -x /usr/lib/wine/wine64 ] || missing+=(wine64)
for tool in zstd bsdiff xdelta3 git rsync jq; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
apt_install "${missing[@]}"
# The package starts a system nginx on port 80 on some images; the tests start their own.
# moto_server: the S3 stand-in `wavecast push` is tested against.
if ! command -v moto_server >/dev/null 2>&1; then
  pip_install 'moto[server]'
fi
# The Windows target the Windows builds and their lint use.
if ! rustup target list --installed | grep -qx x86_64-pc-windows-gnu; then
  echo "installing: the x86_64-pc-windows-gnu Rust target (rustup)" >&2
  rustup target add x86_64-pc-windows-gnu >&2
fi
# cargo-deb: built from source once (a few minutes), then kept in ~/.cargo/bin, which
# CI can cache.
if ! cargo deb --version >/dev/null 2>&1; then
  echo "installing: cargo-deb (cargo install)" >&2
  cargo install cargo-deb --locked >&2
fi
