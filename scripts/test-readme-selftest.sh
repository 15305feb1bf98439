#!/usr/bin/env bash
# Tests scripts/test-readme.sh on small Markdown files: what runs and what does not,
# the directives, the report of a failing block, the refusals, and that no process
# outlives a run.
#
#   bash scripts/test-readme-selftest.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$repo/scripts/lib.sh"
work=$(mktemp -d -t wavecast-readme-selftest-XXXXXX)
failures=0

# The sandbox a failed run kept, as its last line names it.
kept_sandbox() {
  sed -n 's/^test-readme: the sandbox \(.*\) was kept;.*/\1/p' "$work/$1.out"
}
cleanup() {
  local out
  for out in "$work"/*.out; do
    [ -e "$out" ] || continue
    rm -rf "$(kept_sandbox "$(basename "$out" .out)")"
  done
  rm -rf "$work"
}
trap cleanup EXIT

# expect NAME STATUS PATTERN...: runs the runner on $work/NAME.md; its exit status
# must be STATUS and its output must match every PATTERN (grep -E).
expect() {
  local name=$1 want=$2 status=0 pattern
  shift 2
  bash "$repo/scripts/test-readme.sh" "$work/$name.md" >"$work/$name.out" 2>&1 || status=$?
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

# Every directive, variables and `cd` carried from block to block, fences that do
# not run, and the stand-in of port 8080 for a server and its client.
cat >"$work/passes.md" <<'EOF'
# Passes

```sh
greeting="hello"
mkdir -p sub
cd sub
```

```text
false
```

<!-- test-readme: skip: it would fail -->
```sh
false
```

```sh
test "$greeting" = hello
test "$(basename "$PWD")" = sub
```

<!-- test-readme: exit 3 -->
```sh
true
sh -c 'exit 3'
echo "never reached"
false
```

<!-- test-readme: server 127.0.0.1:8080 -->
```sh
python3 -m http.server 8080 --bind 127.0.0.1
```

```sh
python3 -c 'import urllib.request; urllib.request.urlopen("http://127.0.0.1:8080/", timeout=5)'
```

<!-- test-readme: stop-after 1 -->
```sh
python3 -c 'import signal, sys, time; signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); time.sleep(60)'
```
EOF
expect passes 0 \
  '^test-readme: 6 blocks ran, 1 skipped$' \
  '^== passes.md:14 \(Passes\): not run: it would fail$' \
  '^\(exited with status 3, as expected\)$' \
  '^test-readme: passes.md: ok in '

# A failure names the file's line of the command and of its block, and stops the run.
cat >"$work/fails.md" <<'EOF'
# Fails

## Here

```sh
true
echo "about to fail"
sh -c 'exit 4'
echo "never reached"
```

```sh
echo "never reached either"
```
EOF
expect fails 4 \
  '^test-readme: FAILED at fails.md:8 \(the block at fails.md:5, under "Here"\): exit status 4 from$' \
  "^  sh -c 'exit 4'$"
if grep -q 'never reached' <(grep -v '^+' "$work/fails.out"); then
  echo "FAIL fails: the run went on after the failure"
  failures=$((failures + 1))
fi

# A block expected to fail that succeeds fails the run.
cat >"$work/wrong-exit.md" <<'EOF'
<!-- test-readme: exit 2 -->
```sh
true
```
EOF
expect wrong-exit 1 'exited with status 0, not 2$'

# A background block is stopped when the run fails, and the sandbox is kept.
cat >"$work/server-then-fail.md" <<'EOF'
<!-- test-readme: server 127.0.0.1:8080 -->
```sh
python3 -m http.server 8080 --bind 127.0.0.1
```

```sh
false
```
EOF
expect server-then-fail 1 '^test-readme: FAILED at server-then-fail.md:7 '
sandbox=$(kept_sandbox server-then-fail)
if [ -z "$sandbox" ] || [ ! -d "$sandbox" ]; then
  echo "FAIL server-then-fail: the failed run's sandbox was not kept"
  failures=$((failures + 1))
else
  pgid=$(grep -o 'process group [0-9]*' "$work/server-then-fail.out" | grep -o '[0-9]*$')
  if [ -z "$pgid" ] || group_alive "$pgid"; then
    echo "FAIL server-then-fail: the server (process group ${pgid:-?}) is still running" 
    failures=$((failures + 1))
  fi
fi

# A stop-after block that does not exit 0 on SIGTERM fails.
cat >"$work/killed.md" <<'EOF'
<!-- test-readme: stop-after 1 -->
```sh
sleep 60
```
EOF
expect killed 143 '^test-readme: FAILED at killed.md:3 '

# What the runner refuses before running anything.
cat >"$work/refused.md" <<'EOF'
```sh
make && make install
```

```bash
echo "bash"
```

<!-- test-readme: sometimes -->
```sh
true
```

<!-- test-readme: skip: -->
```sh
true
```

<!-- test-readme: exit 1 -->
A paragraph.

<!-- test-readme: stop-after 5 -->
```sh
sleep 1
sleep 2
```
EOF
expect refused 2 \
  '^error: refused.md:2: `&&` hides a failure' \
  '^error: refused.md:5: ```bash blocks are not run' \
  '^error: refused.md:10: unknown test-readme directive `sometimes`' \
  '^error: refused.md:15: `skip:` needs a reason' \
  '^error: refused.md:19: a test-readme directive must be followed by a ```sh block' \
  '^error: refused.md:23: a `stop-after` block must hold exactly one command'

if [ "$failures" -ne 0 ]; then
  echo "test-readme-selftest: $failures failed" >&2
  exit 1
fi
echo "test-readme-selftest: all passed"
