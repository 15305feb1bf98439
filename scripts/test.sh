#!/usr/bin/env bash
# The test command: installs what the tests need on a fresh Debian machine, builds the
# binaries the end-to-end tests drive, and runs every test in the workspace.
#
#   bash scripts/test.sh            # all tests
#   bash scripts/test.sh attacks    # extra arguments filter tests, as with cargo test
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

cargo build --workspace --bins --locked
cargo test --workspace --locked -- "$@"
