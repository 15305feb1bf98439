#!/usr/bin/env bash
# The main job, end to end, on a fresh machine: build wavecast, make a key, publish two
# releases (1.1.0 at a 30 % rollout), serve the site on loopback, and update a sandbox
# client from it. Everything happens in a temporary folder, printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --bins --locked
bin="$PWD/target/release"
work=$(mktemp -d -t wavecast-demo-XXXXXX)
export WAVECAST_KEY_PASSWORD=${WAVECAST_KEY_PASSWORD:-demo-password}
export WAVECAST_NO_PROGRESS=1
cd "$work"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

# Two small releases of a pretend app.
for version in 1.0 1.1; do
  mkdir -p "release-$version/bin" "release-$version/share/doc"
  printf '#!/bin/sh\necho "hello from app %s"\n' "$version" > "release-$version/bin/app"
  chmod +x "release-$version/bin/app"
  printf 'App %s\n' "$version" > "release-$version/share/doc/README"
done

step "$bin/wavecast" keygen --out keys/
step "$bin/wavecast" publish release-1.0/ --version 1.0.0 --site site/ --key keys/wavecast.key --notes "First release"
step "$bin/wavecast" publish release-1.1/ --version 1.1.0 --site site/ --key keys/wavecast.key --rollout 30% --notes "Faster startup"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 127.0.0.1 --directory site >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null && break; sleep 0.1; done

step "$bin/wavecast-update" init --root app-root --url "http://127.0.0.1:$port/" --pubkey keys/wavecast.pub
step "$bin/wavecast-update" check --root app-root --json
step "$bin/wavecast-update" update --root app-root --yes
step "$bin/wavecast-update" status --root app-root
step app-root/current/bin/app
step "$bin/wavecast-update" check --root app-root

printf '\nThe client installed the release its rollout bucket allows (1.1.0 for about 30%% of install ids, else 1.0.0).\n'
printf 'Verify the published manifest with the stock minisign CLI:\n'
jq -j .manifest site/channels/stable.json > stable.manifest.json 2>/dev/null \
  || python3 -c 'import json,sys; sys.stdout.write(json.load(open("site/channels/stable.json"))["manifest"])' > stable.manifest.json
python3 -c 'import json,sys; sys.stdout.write(json.load(open("site/channels/stable.json"))["signature"])' > stable.manifest.json.minisig
if command -v minisign >/dev/null; then step minisign -V -p keys/wavecast.pub -m stable.manifest.json; fi
printf '\nEverything is in %s\n' "$work"
