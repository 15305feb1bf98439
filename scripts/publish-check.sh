#!/usr/bin/env bash
# Checks that every published crate packages and builds from its package alone, as
# crates.io would get it: `cargo publish --dry-run --workspace` packages the crates
# in dependency order, and verifies each by building it from its .crate with its
# siblings taken from a local registry overlay of the packages just made (they are
# not on crates.io yet, so a crate-by-crate dry run could not resolve them). This
# catches what a build of the workspace cannot: a file outside a crate's folder
# (an `include_str!` of `../`), a file left out of the package, a path dependency
# without a version. Nothing is uploaded; the crates.io index must be reachable.
# wavecast-tests is never published (`publish = false`), so it is left out.
#
#   bash scripts/publish-check.sh
#
# The verifying builds use `${CARGO_TARGET_DIR:-target}/publish-check`, which CI can
# cache: about 3 minutes on two cores from nothing, under a minute once their
# dependencies are built.
# Needs jq (scripts/install-deps.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

# The crates to publish: every member but those with `publish = false`.
crates=$(cargo metadata --no-deps --format-version 1 --locked \
  | jq -r '.packages[] | select(.publish != []) | .name')
# Every package carries both licence files (symbolic links in each crate's folder,
# which cargo packages as the files they point to).
for crate in $crates; do
  files=$(cargo package --list --locked --allow-dirty -p "$crate")
  for licence in LICENSE-MIT LICENSE-APACHE; do
    if ! grep -qx "$licence" <<<"$files"; then
      echo "error: the package of $crate lacks $licence" >&2
      exit 1
    fi
  done
done
# --allow-dirty: CI checks the tree it has, committed or not.
# Cargo takes a registry crate whose version has not changed as unchanged: it would
# reuse what an earlier run unpacked of our crates from the overlay (under
# $CARGO_HOME/registry/src/-<hash>/) and what it built of them, stale sources that
# then fail (or pass) the check for the wrong reasons. Both go first; the verifying
# builds get a target folder of their own, whose other dependencies stay cached.
registry_src="${CARGO_HOME:-$HOME/.cargo}/registry/src"
target="${CARGO_TARGET_DIR:-target}/publish-check"
for crate in $crates; do
  rm -rf "$registry_src"/-*/"$crate"-[0-9]* \
    "$target"/debug/.fingerprint/"$crate"-* "$target"/debug/build/"$crate"-* \
    "$target"/debug/deps/lib"${crate//-/_}"-* "$target"/debug/deps/"${crate//-/_}"-*
done
CARGO_TARGET_DIR="$target" cargo publish --dry-run --workspace --locked --allow-dirty
