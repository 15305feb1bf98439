#!/usr/bin/env bash
# Builds the Debian package of the client (`wavecast-update`, with the unit templates
# of its timer and service) from the release profile, and checks it without touching
# this machine's system or starting a container: its control data; that `dpkg -i`
# installs it into a scratch root (`dpkg --root`, maintainer scripts included, run
# with DPKG_ROOT set as dpkg does for another root), and that it holds what it should
# there (the stripped executable, which runs; the units; the manual and the
# licences); that systemd accepts the units; and that `dpkg -r` and `dpkg -P` remove
# every file it installed. The units are checked with `systemd-analyze verify
# --root` on the scratch root, which needs no running systemd: the root gets the
# system's own units beside the package's (the service pulls in sysinit.target and
# network-online.target like any service), and the package's executable is the one
# ExecStart names, so a wrong path fails too.
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
dpkg-deb -e "$deb" "$control"
for script in postinst prerm postrm; do
  [ -x "$control/$script" ] || fail "lacks its $script script"
  sh -n "$control/$script" || fail "its $script script is not valid sh"
done

# dpkg -i into an empty root with a database of its own. Its dependencies (libc6)
# are this machine's, not the scratch root's, hence --force-depends; the maintainer
# scripts run without chroot (the root has no shell) and see DPKG_ROOT, so they
# leave this machine's systemd alone.
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status"
scratch_dpkg() {
  dpkg --root="$root" --force-script-chrootless --force-depends --log=/dev/null "$@"
}
scratch_dpkg -i "$deb" >&2 || fail "dpkg -i into a scratch root failed"
scratch_dpkg -s wavecast-update | grep -q '^Status: install ok installed$' \
  || fail "dpkg does not list it as installed: $(scratch_dpkg -s wavecast-update)"
doc=usr/share/doc/wavecast-update
units=usr/lib/systemd/system
for file in usr/bin/wavecast-update "$units/wavecast-update@.service" \
  "$units/wavecast-update@.timer" "$doc/README.Debian" "$doc/README.md" \
  "$doc/LICENSE-MIT" "$doc/LICENSE-APACHE" "$doc/copyright"; do
  [ -f "$root/$file" ] || fail "installed no /$file"
done
installed_files=$(scratch_dpkg -L wavecast-update)
version=$("$root/usr/bin/wavecast-update" --version)
[ "$version" = "wavecast-update $(dpkg-deb --field "$deb" Version | sed 's/-[0-9]*$//')" ] \
  || fail "its executable reports \`$version\`"
# The release profile strips symbols and debug info: a package that carries them
# was built from another profile.
if readelf -S "$root/usr/bin/wavecast-update" | grep -Eq '\.(symtab|debug_info)'; then
  fail "/usr/bin/wavecast-update is not stripped"
fi

# systemd-analyze verify exits 0 on some mistakes (an unknown key, a misspelt
# section) and only prints them: any output fails. It runs on a copy of the
# installed root with the system's units added (without overwriting the package's),
# so that the removal below sees only what dpkg installed.
verify_root=$work/verify-root
cp -a "$root" "$verify_root"
cp -an /usr/lib/systemd/system/. "$verify_root/$units/"
verify=$(systemd-analyze verify --root="$verify_root" --man=no \
  wavecast-update@app.timer wavecast-update@app.service 2>&1) \
  || fail "systemd-analyze verify failed: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify: $verify"
echo "systemd-analyze verify: wavecast-update@app.timer and wavecast-update@app.service are valid" >&2

# Removal, then purge: every file the package installed is gone.
scratch_dpkg -r wavecast-update >&2 || fail "dpkg -r failed"
scratch_dpkg -P wavecast-update >&2 || fail "dpkg -P failed"
while read -r path; do
  if [ -f "$root$path" ] || [ -L "$root$path" ]; then
    fail "$path is left after dpkg -P"
  fi
done <<<"$installed_files"
if scratch_dpkg -s wavecast-update >/dev/null 2>&1; then
  fail "dpkg still lists it after dpkg -P"
fi
echo "dpkg -i, -r and -P into a scratch root: installed, verified and removed" >&2
echo "$deb"
