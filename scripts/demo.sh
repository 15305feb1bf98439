#!/usr/bin/env bash
# The main job, end to end: build wavecast, make a key, publish two releases (1.1.0 at
# a 30 % rollout), serve the site on loopback, update a sandbox client from it, and
# check the signed manifest with the stock minisign CLI.
#
#   bash scripts/demo.sh
#
# Each step is printed before it runs, and the first one that fails stops the demo,
# naming it. Everything happens in a new temporary folder, printed first and kept
# afterwards. Needs a Rust toolchain and python3 (the web server); the last step
# needs minisign (scripts/install-deps.sh installs it) and is skipped, saying so,
# without it. The binaries are the debug build that scripts/test.sh also uses.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

bold='' plain=''
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m' plain=$'\033[0m'; fi

work=$(mktemp -d -t wavecast-demo-XXXXXX)
server=""

finish() {
  local status=$?
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ]; then
    printf '\ndemo: FAILED (exit status %s)\n' "$status" >&2
    if [ -s "$work/server.log" ]; then
      printf 'demo: the web server said:\n' >&2
      sed 's/^/  /' "$work/server.log" >&2
    fi
  fi
  printf '\ndemo: the work folder %s was kept; remove it with: rm -rf %s\n' "$work" "$work"
}
trap finish EXIT
trap 'printf "demo: failed at scripts/demo.sh:%s: %s\n" "$LINENO" "$BASH_COMMAND" >&2' ERR

# The arguments as a shell command, each quoted when it needs to be.
shown() {
  local out="" arg
  for arg; do
    if [[ $arg =~ ^[A-Za-z0-9_./:=%@+,-]+$ ]]; then out+=" $arg"; else out+=" \"$arg\""; fi
  done
  printf '%s' "${out# }"
}

# Prints a command, runs it, and stops the demo, naming the command, if it fails.
step() {
  printf '\n%s$ %s%s\n' "$bold" "$(shown "$@")" "$plain"
  local status=0
  "$@" || status=$?
  if [ "$status" -ne 0 ]; then
    printf 'demo: this step exited with status %s: %s\n' "$status" "$(shown "$@")" >&2
    exit "$status"
  fi
}

printf 'demo: working in %s\n' "$work"

step cargo build --bins --locked
target=$(cargo metadata --format-version 1 --no-deps --locked |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
export PATH="$target/debug:$PATH"
export WAVECAST_KEY_PASSWORD=${WAVECAST_KEY_PASSWORD:-demo-password}
export WAVECAST_NO_PROGRESS=1
cd "$work"

# Two small releases of a pretend app.
make_release release-1.0 1.0
make_release release-1.1 1.1

step wavecast keygen --out keys/
step wavecast publish release-1.0/ --version 1.0.0 --site site/ --key keys/wavecast.key --notes "First release"
step wavecast publish release-1.1/ --version 1.1.0 --site site/ --key keys/wavecast.key --rollout 30% --notes "Faster startup"

port=$(free_port)
printf '\n%s$ python3 -m http.server %s --bind 127.0.0.1 --directory site &%s\n' "$bold" "$port" "$plain"
python3 -m http.server "$port" --bind 127.0.0.1 --directory site >server.log 2>&1 &
server=$!
wait_for_port "$port" "$server"

step wavecast-update init --root app-root --url "http://127.0.0.1:$port/" --pubkey keys/wavecast.pub
step wavecast-update check --root app-root --json
step wavecast-update update --root app-root --yes
step wavecast-update status --root app-root
step app-root/current/bin/app
step wavecast-update check --root app-root

printf '\nThe client installed the release its rollout bucket allows (1.1.0 for about 30%% of install ids, else 1.0.0).\n'

# The envelope holds the manifest's exact bytes and one signature per release key;
# minisign needs the manifest in a file and, beside it, the signature by the key it
# checks against.
signed_manifest() {
  python3 - site/channels/stable.json keys/wavecast.pub <<'EOF'
import base64, json, sys

envelope_path, pubkey_path = sys.argv[1:]
with open(envelope_path, encoding="utf-8") as file:
    envelope = json.load(file)
with open(pubkey_path, encoding="utf-8") as file:
    key_id = base64.b64decode(file.read().splitlines()[1])[2:10]
signatures = [s for s in envelope["signatures"] if base64.b64decode(s.splitlines()[1])[2:10] == key_id]
if not signatures:
    sys.exit(f"no signature in {envelope_path} is by the key in {pubkey_path}")
with open("stable.manifest.json", "w", encoding="utf-8", newline="") as file:
    file.write(envelope["manifest"])
with open("stable.manifest.json.minisig", "w", encoding="utf-8", newline="") as file:
    file.write(signatures[0])
print("wrote stable.manifest.json and stable.manifest.json.minisig")
EOF
}
printf '\nVerify the published manifest with the stock minisign CLI:\n'
printf '\n%s$ # the manifest and its signature by keys/wavecast.pub, out of site/channels/stable.json%s\n' "$bold" "$plain"
signed_manifest
if command -v minisign >/dev/null; then
  step minisign -V -p keys/wavecast.pub -m stable.manifest.json
else
  printf 'demo: skipped `minisign -V`: minisign is not installed (bash scripts/install-deps.sh installs it)\n' >&2
fi
