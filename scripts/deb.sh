#!/usr/bin/env bash
# Builds the Debian package of the client (`wavecast-update`, with the unit template
# of its poll service) from the release profile, and checks it without installing
# it on this machine or starting a container: its control data, that it holds what
# it should (the stripped executable, which runs; the unit; the manual and the
# licences; maintainer scripts that parse) and that systemd accepts the unit. The
# unit is checked with `systemd-analyze verify --root` on the extracted package,
# which needs no running systemd: the root gets the system's own units beside the package's (the unit
# pulls in sysinit.target and network-online.target like any service), and the
# package's executable is the one ExecStart names, so a wrong path fails too.
#
#   bash scripts/deb.sh     # prints the path of the .deb last
#
# Installs what it needs when missing: cargo-deb (scripts/install-deps.sh) and
# systemd (for systemd-analyze). The release build goes to
# `${CARGO_TARGET_DIR:-target}/release/`, the package to `.../debian/`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

bash scripts/install-deps.sh
# systemd-analyze checks the unit.
command -v systemd-analyze >/dev/null 2>&1 || apt_install systemd

deb=$(cargo deb --locked -p wavecast-client-cli | tail -n 1)
echo "built $deb ($(stat -c %s "$deb") bytes)" >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
control=$work/control

fail() {
  echo "error: $deb: $*" >&2
  exit 1
}

info=$(dpkg-deb --info "$deb")
grep -q '^ Package: wavecast-update$' <<<"$info" || fail "not the package wavecast-update: $info"
grep -q '^ Depends: .*libc6' <<<"$info" || fail "no dependency on libc6: $info"
dpkg-deb --contents "$deb" >&2
dpkg-deb -x "$deb" "$root"
doc=usr/share/doc/wavecast-update
for file in usr/bin/wavecast-update usr/lib/systemd/system/wavecast-update@.service \
  "$doc/README.Debian" "$doc/README.md" "$doc/LICENSE-MIT" "$doc/LICENSE-APACHE" \
  "$doc/copyright"; do
  [ -f "$root/$file" ] || fail "lacks /$file"
done
dpkg-deb -e "$deb" "$control"
for script in postinst prerm postrm; do
  [ -x "$control/$script" ] || fail "lacks its $script script"
  sh -n "$control/$script" || fail "its $script script is not valid sh"
done
version=$("$root/usr/bin/wavecast-update" --version)
[ "$version" = "wavecast-update $(dpkg-deb --field "$deb" Version | sed 's/-[0-9]*$//')" ] \
  || fail "its executable reports \`$version\`"
# The release profile strips symbols and debug info: a package that carries them
# was built from another profile.
if readelf -S "$root/usr/bin/wavecast-update" | grep -Eq '\.(symtab|debug_info)'; then
  fail "/usr/bin/wavecast-update is not stripped"
fi

# systemd-analyze verify exits 0 on some mistakes (an unknown key, a misspelt
# section) and only prints them: any output fails.
cp -an /usr/lib/systemd/system/. "$root/usr/lib/systemd/system/"
verify=$(systemd-analyze verify --root="$root" --man=no wavecast-update@app.service 2>&1) \
  || fail "systemd-analyze verify failed: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify: $verify"
echo "systemd-analyze verify: wavecast-update@app.service is valid" >&2
echo "$deb"
