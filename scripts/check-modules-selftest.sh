#!/usr/bin/env bash
# Tests scripts/check-modules.py on tiny packages: what is an import and what is not
# (comments, strings, `#[cfg(test)]`, declarations, visibility, re-exports), the
# module layouts, the cycles it must find and how it reports them.
#
#   bash scripts/check-modules-selftest.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d -t wavecast-modules-selftest-XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0

# package NAME: starts the package $work/NAME (a library unless it gets a main.rs).
package() {
  mkdir -p "$work/$1/src"
  printf '[package]\nname = "%s"\nversion = "0.0.0"\nedition = "2024"\n' "$1" >"$work/$1/Cargo.toml"
}

# file PATH: writes stdin to $work/PATH.
file() {
  mkdir -p "$(dirname "$work/$1")"
  cat >"$work/$1"
}

# expect NAME STATUS PATTERN...: checks the package $work/NAME; the exit status must
# be STATUS and the output must have a line matching each PATTERN (grep -E).
expect() {
  local name=$1 want=$2 status=0 pattern
  shift 2
  (cd "$work" && python3 "$repo/scripts/check-modules.py" "$name") >"$work/$name.out" 2>&1 || status=$?
  if [ "$status" -ne "$want" ]; then
    echo "FAIL $name: exit status $status, expected $want"
    sed 's/^/  | /' "$work/$name.out"
    failures=$((failures + 1))
    return
  fi
  for pattern; do
    if ! grep -Eq -- "$pattern" "$work/$name.out"; then
      echo "FAIL $name: no line matches \`$pattern\`"
      sed 's/^/  | /' "$work/$name.out"
      failures=$((failures + 1))
      return
    fi
  done
  echo "ok   $name"
}

# Layers without a cycle, and everything that names another module without importing
# it. Each line marked "not an import" would close a cycle if it were read as one.
package layered
file layered/src/lib.rs <<'EOF'
//! Names `crate::b::Thing` in a comment: not an import.
mod a;
pub mod b;
mod net;

// A parent using its child (a re-export) is an ordinary import.
pub use a::Base as Renamed;
pub use b::Thing;

#[cfg(test)]
mod tests {
    use crate::b::*; // under cfg(test): not an import
}
EOF
file layered/src/a.rs <<'EOF'
pub struct Base;

/* A block comment /* nested */ naming crate::b::Thing: not an import. */
pub fn text() -> (&'static str, &'static str, char, char) {
    ("crate::b::Thing", r#"super::b::Thing "quoted""#, '"', '\'')
}

pub fn lifetime<'a>(text: &'a str) -> &'a str {
    text
}

#[cfg(test)]
fn only_in_tests() -> crate::b::Thing {
    crate::b::Thing(Base) // under cfg(test): not an import
}
EOF
file layered/src/b.rs <<'EOF'
// Through the crate root's re-export, this names `a`, where `Base` is defined.
use crate::Renamed;

pub struct Thing(pub Renamed);

pub fn make() -> Thing {
    Thing(inner::base())
}

mod inner {
    // A visibility restriction names `b` without importing from it.
    pub(in crate::b) fn base() -> super::super::a::Base {
        crate::a::Base
    }
}
EOF
# `net.rs` with its submodules in `net/`.
file layered/src/net.rs <<'EOF'
mod http;

pub fn get() -> http::Client {
    http::Client
}
EOF
file layered/src/net/http.rs <<'EOF'
pub struct Client;

pub fn thing() -> crate::Thing {
    crate::b::make()
}
EOF
expect layered 0 '^ok +layered lib layered \(layered/src/lib.rs\): 6 modules, no cycle$'

# Two modules that import each other.
package pair
file pair/src/lib.rs <<'EOF'
mod a;
mod b;
EOF
file pair/src/a.rs <<'EOF'
use crate::b::B;
pub struct A(B);
EOF
file pair/src/b.rs <<'EOF'
pub struct B;
pub fn f(a: crate::a::A) -> crate::a::A {
    a
}
EOF
expect pair 1 \
  '^error pair lib pair \(pair/src/lib.rs\): 1 module cycle:$' \
  '^  a -> b -> a$' \
  '^    a -> b  pair/src/a.rs:1  `crate::b::B`$' \
  '^    b -> a  pair/src/b.rs:2  `crate::a::A`$'

# A parent re-exporting its submodule, which uses the parent's items (`mod.rs`
# layout): the parent -> child import reversed closes a cycle.
package parent
file parent/src/lib.rs <<'EOF'
mod transport;
pub use transport::Transport;
EOF
file parent/src/transport/mod.rs <<'EOF'
mod file;
pub use file::FileTransport;
pub trait Transport {}
EOF
file parent/src/transport/file.rs <<'EOF'
use super::Transport;
pub struct FileTransport;
impl Transport for FileTransport {}
EOF
expect parent 1 \
  '^  transport -> transport::file -> transport$' \
  '^    transport::file -> transport +parent/src/transport/file.rs:1  `super::Transport`$'

# A longer cycle through `use` trees, a glob, an inline module and `super::`.
package tree
file tree/src/lib.rs <<'EOF'
mod a;
mod b;
mod c;
EOF
file tree/src/a.rs <<'EOF'
use crate::{b::{self, Bee as _}, c as _};
pub struct A;
pub fn make() -> b::Bee {
    b::Bee
}
EOF
file tree/src/b.rs <<'EOF'
use super::c::deep::*;
pub struct Bee;
pub fn g() {
    f();
}
EOF
file tree/src/c.rs <<'EOF'
pub mod deep {
    pub fn f() -> Option<crate::a::A> {
        None
    }
}
EOF
expect tree 1 \
  '^error tree lib tree \(tree/src/lib.rs\): 1 module cycle:$' \
  '^  a -> b -> c::deep -> a$'

# A binary whose submodule uses an item of `main.rs`: the crate root is a module.
package binary
rm -f "$work/binary/src/lib.rs"
file binary/src/main.rs <<'EOF'
mod cli;
struct Shared;
fn main() {
    cli::run();
}
EOF
file binary/src/cli.rs <<'EOF'
use crate::Shared;
pub fn run() {
    let _ = Shared;
}
EOF
expect binary 1 \
  '^error binary bin binary \(binary/src/main.rs\): 1 module cycle:$' \
  '^  crate -> cli -> crate$'

# A module whose file is missing cannot be checked: that is an error, not a pass.
package missing
file missing/src/lib.rs <<'EOF'
mod gone;
EOF
expect missing 2 '^error: module `gone` declared in `missing/src/lib.rs`: neither of `missing/src/gone.rs` and `missing/src/gone/mod.rs` exist$'

if [ "$failures" -ne 0 ]; then
  echo "check-modules-selftest: $failures failed" >&2
  exit 1
fi
echo "check-modules-selftest: all passed"
