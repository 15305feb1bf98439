#!/usr/bin/env bash
# Runs the README's examples, in order, in a sandbox, so they cannot drift from the
# product.
#
#   bash scripts/test-readme.sh              # README.md
#   bash scripts/test-readme.sh FILE.md      # another Markdown file
#   bash scripts/test-readme.sh --keep ...   # keep the sandbox afterwards
#
# The convention:
#
# - Every ```sh fenced block runs, in the order of the file; other fences (```text,
#   ```toml…) never run. A ```bash, ```shell or ```console fence is refused: write
#   ```sh or ```text.
# - All the blocks run in one bash process, as a reader pasting them into one
#   terminal would: variables and `cd` carry over. It runs with `set -euo pipefail`
#   and stdin from /dev/null, so the first command that fails stops the run. Since
#   bash does not stop on a failure left of `&&`, run blocks may not use `&&`: one
#   command per line.
# - An HTML comment on the line before the fence changes how the block runs:
#     <!-- test-readme: skip: REASON -->         not run; REASON is required
#     <!-- test-readme: exit N -->               must exit with status N (run in a
#                                                subshell, so it changes nothing)
#     <!-- test-readme: server HOST:PORT -->     a server: runs in the background
#                                                until the end (its output goes to
#                                                a log), and the next block starts
#                                                once HOST:PORT accepts
#     <!-- test-readme: stop-after SECONDS -->   a command that runs until stopped:
#                                                it gets SIGTERM after SECONDS and
#                                                must then exit 0 (one command only)
# - The sandbox is a temporary folder; the blocks run in its `project/`, a git
#   repository whose `origin` is a local bare repository (the stand-in for GitHub).
#   Before the first block, the runner creates what the blocks name: each
#   `release-X.Y/` folder (a small app, scripts/lib.sh's make_release, plus a 256 KiB
#   image for a `--image NAME=FILE` on the same command), `mix.json` (the attribute
#   mix of the README), the `wavecast-update` builds a command names as
#   `target/release/wavecast-update` or `target/TRIPLE/release/wavecast-update` with a
#   `--version` (what `WAVECAST_CLIENT_VERSION=VERSION cargo build --release --bin
#   wavecast-update [--target TRIPLE]` writes there, built the same way but without
#   `--release`, for speed; for another triple than this machine's, which needs a
#   cross toolchain, a stand-in: that build with an ELF header naming no machine, so
#   that it does not run here, like a real cross build, and still carries its
#   version marker), and the buckets named as `s3://BUCKET/`.
# - Stand-ins: these strings are replaced in run blocks (and directives) before they
#   run. Nothing else is rewritten.
#     127.0.0.1:8080, http.server 8080     a free port on 127.0.0.1
#     https://updates.example.com/         that server: http://127.0.0.1:PORT/
#     http://127.0.0.1:9000,
#     https://s3.eu-west-1.amazonaws.com   a moto_server on a free port
#     /opt/app, /srv/mirror, /dev/mmcblk0p the same paths inside the sandbox
#   and `fw_setenv` (U-Boot's) is a stub on PATH that records its arguments.
# - The environment: PATH starts with copies of the debug `wavecast` and
#   `wavecast-update` (copies, so `self-update` replaces a copy); the clock is frozen
#   at the start of the run (WAVECAST_NOW), so every ramp stays where it started and
#   each run takes the same path whatever the random salts and install id;
#   AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set for moto; git has an
#   identity; WAVECAST_NO_PROGRESS=1. Placeholders such as
#   `WAVECAST_KEY_PASSWORD=...` are run as written.
#
# Each command is echoed with its README line before it runs. When one fails, the run
# stops naming the README line of the command and of its block, and exits non-zero.
# Every process the blocks or the runner start is stopped at the end. Needs a Rust
# toolchain and python3; installs the rest with scripts/install-deps.sh. The runner's
# own tests are scripts/test-readme-selftest.sh.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$repo/scripts/lib.sh"

keep=false
file=""
while [ $# -gt 0 ]; do
  case $1 in
    --keep) keep=true ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    -*)
      echo "error: unknown option \`$1\` (see --help)" >&2
      exit 2
      ;;
    *) file=$1 ;;
  esac
  shift
done

file=$(realpath "${file:-$repo/README.md}")
name=$(basename "$file")
bash "$repo/scripts/install-deps.sh"

started=$(date +%s)
sandbox=$(mktemp -d -t wavecast-readme-XXXXXX)
moto=""
finish() {
  local status=$?
  # Background blocks (servers) that the examples' shell did not get to stop: it
  # empties the file once it has stopped them.
  if [ -s "$sandbox/background.pids" ]; then
    while read -r pid; do
      stop_group "$pid"
    done <"$sandbox/background.pids"
  fi
  if [ "$status" -ne 0 ]; then
    for log in "$sandbox"/server-*.log; do
      [ -s "$log" ] || continue
      echo "test-readme: the end of $log:" >&2
      tail -n 20 "$log" | sed 's/^/  /' >&2
    done
  fi
  if [ -n "$moto" ]; then
    kill -TERM "$moto" 2>/dev/null || true
    wait "$moto" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] || $keep; then
    echo "test-readme: the sandbox ${sandbox} was kept; remove it with: rm -rf ${sandbox}" >&2
  else
    rm -rf "$sandbox"
  fi
}
trap finish EXIT

project=$sandbox/project
mkdir -p "$project" "$sandbox/bin" "$sandbox/opt" "$sandbox/srv" "$sandbox/dev"
web_port=$(free_port)
s3_port=$(free_port)

# The README's text and what it stands for here.
substitutions=(
  "127.0.0.1:8080" "127.0.0.1:$web_port"
  "http.server 8080" "http.server $web_port"
  "https://updates.example.com/" "http://127.0.0.1:$web_port/"
  "http://127.0.0.1:9000" "http://127.0.0.1:$s3_port"
  "https://s3.eu-west-1.amazonaws.com" "http://127.0.0.1:$s3_port"
  "/opt/app" "$sandbox/opt/app"
  "/srv/mirror" "$sandbox/srv/mirror"
  "/dev/mmcblk0p" "$sandbox/dev/mmcblk0p"
)

# Reads the Markdown file; writes the examples as one script (examples.sh), the map
# from its lines to the file's (lines.sh), and what they need (fixtures.sh).
python3 - "$file" "$sandbox" "${substitutions[@]}" <<'PYTHON'
import re, shlex, sys

path, out, *pairs = sys.argv[1:]
name = path.rsplit("/", 1)[-1]
substitutions = list(zip(pairs[0::2], pairs[1::2]))
lines = open(path, encoding="utf-8").read().split("\n")
errors = []
DIRECTIVE = re.compile(r"^\s*<!--\s*test-readme:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([^\s`]*)")

def substitute(text):
    for old, new in substitutions:
        text = text.replace(old, new)
    return text

def logical_commands(body):
    """The block's commands: continuation lines joined, comments and blanks dropped."""
    commands, current = [], ""
    for line in body:
        current += line
        if current.endswith("\\"):
            current = current[:-1]
            continue
        if current.strip() and not current.strip().startswith("#"):
            commands.append(current)
        current = ""
    return commands

# The ```sh blocks: (fence line number, heading above, directive, body lines)
blocks, heading, i = [], "", 0
pending = None  # (line number, directive text) of a directive awaiting its fence
while i < len(lines):
    line = lines[i]
    if line.startswith("#"):
        heading = line.lstrip("#").strip()
    match = DIRECTIVE.match(line)
    if match:
        if pending:
            errors.append(f"{name}:{pending[0]}: a test-readme directive must be followed by a ```sh block")
        pending = (i + 1, match.group(1))
        i += 1
        continue
    fence = FENCE.match(line)
    if fence:
        indent, marks, lang = fence.groups()
        start, body, i = i + 1, [], i + 1
        while i < len(lines) and not re.match(r"^\s*" + re.escape(marks[0]) + "{%d,}\\s*$" % len(marks), lines[i]):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i].lstrip())
            i += 1
        if i == len(lines):
            errors.append(f"{name}:{start}: this fence is never closed")
        if lang in ("bash", "shell", "console", "zsh", "shell-session"):
            errors.append(f"{name}:{start}: ```{lang} blocks are not run: write ```sh (run) or ```text (not run)")
        if pending and lang != "sh":
            errors.append(f"{name}:{pending[0]}: a test-readme directive must be followed by a ```sh block")
        if lang == "sh":
            blocks.append((start, heading, pending[1] if pending else "", body))
        pending = None
        i += 1
        continue
    if pending and line.strip():
        errors.append(f"{name}:{pending[0]}: a test-readme directive must be followed by a ```sh block")
        pending = None
    i += 1

script = [
    "# Generated by scripts/test-readme.sh from " + path + ".",
    'source "$TEST_README_SANDBOX/helpers.sh"',
    'source "$TEST_README_SANDBOX/lines.sh"',
    "__begin",
]
line_of = {}  # examples.sh line -> Markdown line
releases, images, updaters, buckets = set(), set(), set(), set()

def emit(text, source):
    script.append(text)
    line_of[len(script)] = source

for start, heading, directive, body in blocks:
    kind, _, argument = directive.partition(" ")
    argument = substitute(argument.strip())
    where = f"{name}:{start}"
    title = shlex.quote(heading)
    if kind == "skip:":
        if not argument:
            errors.append(f"{where}: `skip:` needs a reason")
        emit(f"__skip {start} {title} {shlex.quote(argument)}", start)
        continue
    if kind not in ("", "exit", "server", "stop-after"):
        errors.append(f"{where}: unknown test-readme directive `{directive}`")
        continue
    commands = logical_commands(body)
    for number, text in enumerate(body, start + 1):
        code = re.split(r"(?:^|\s)#", text, maxsplit=1)[0]
        if "&&" in code:
            errors.append(f"{name}:{number}: `&&` hides a failure of its left side from `set -e`: write one command per line")
    if not commands:
        errors.append(f"{where}: this ```sh block has no command")
        continue
    for command in commands:
        releases.update(re.findall(r"(?<![\w/.-])(release-\d+\.\d+)/", command))
        for release in re.findall(r"(?<![\w/.-])(release-\d+\.\d+)/", command):
            for image in re.findall(r"--image\s+[\w.-]+=(\S+)", command):
                images.add(f"{release}/{image}")
        for build in re.finditer(r"target/(?:([\w-]+)/)?release/wavecast-update", command):
            version = re.search(r"--version\s+(\S+)", command)
            if version:
                updaters.add((build.group(0), build.group(1) or "", version.group(1)))
        buckets.update(re.findall(r"s3://([a-z0-9][a-z0-9.-]+)", command))
    body = [substitute(text) for text in body]
    emit(f"__block {start} {title}", start)
    if kind == "exit":
        if not argument.isdigit():
            errors.append(f"{where}: `exit` needs a status, e.g. `exit 2`")
        emit("__expect_begin", start)
        emit("( set -ex", start)
        for number, text in enumerate(body, start + 1):
            emit(text, number)
        emit(")", start)
        emit(f"__expect_end {argument or 0} $?", start)
    elif kind == "server":
        if not re.fullmatch(r"127\.0\.0\.1:\d+", argument):
            errors.append(f"{where}: `server` needs the address it listens on, e.g. `server 127.0.0.1:8080`")
        log = f'"$TEST_README_SANDBOX/server-{start}.log"'
        shown = shlex.quote("\n".join(commands))
        emit("set -m", start)
        emit("{ set -x", start)
        for number, text in enumerate(body, start + 1):
            emit(text, number)
        emit(f"}} >{log} 2>&1 &", start)
        emit("set +m", start)
        emit(f"__server $! {argument.rpartition(':')[2] or 0} {start} {shown}", start)
    elif kind == "stop-after":
        if not argument.isdigit():
            errors.append(f"{where}: `stop-after` needs a number of seconds")
        if len(commands) != 1:
            errors.append(f"{where}: a `stop-after` block must hold exactly one command")
        emit("set -x", start)
        first = next(n for n, text in enumerate(body) if text.strip() and not text.strip().startswith("#"))
        for number, text in enumerate(body, start + 1):
            if number - start - 1 == first:
                text = f"timeout --preserve-status --kill-after=30 {argument} {text}"
            emit(text, number)
        emit("{ set +x; } 2>/dev/null", start)
    else:
        emit("set -x", start)
        for number, text in enumerate(body, start + 1):
            emit(text, number)
        emit("{ set +x; } 2>/dev/null", start)
script.append("__end")

if not blocks:
    errors.append(f"{name}: no ```sh block: nothing to run")
if errors:
    sys.stderr.write("".join(f"error: {error}\n" for error in errors))
    sys.exit(2)
with open(f"{out}/examples.sh", "w", encoding="utf-8") as file:
    file.write("\n".join(script) + "\n")
with open(f"{out}/lines.sh", "w", encoding="utf-8") as file:
    file.write("__lines=(" + " ".join(f"[{k}]={v}" for k, v in line_of.items()) + ")\n")
    file.write(f"__file={shlex.quote(name)}\n")
with open(f"{out}/fixtures.sh", "w", encoding="utf-8") as file:
    for release in sorted(releases):
        file.write(f"fixture_release {shlex.quote(release)}\n")
    for image in sorted(images):
        file.write(f"fixture_image {shlex.quote(image)}\n")
    for path, triple, version in sorted(updaters):
        file.write(f"fixture_updater {shlex.quote(path)} {shlex.quote(triple)} {shlex.quote(version)}\n")
    for bucket in sorted(buckets):
        file.write(f"fixture_bucket {shlex.quote(bucket)}\n")
PYTHON

# What the examples' shell runs around them: the block markers, the failure report,
# the background blocks.
cat >"$sandbox/helpers.sh" <<'HELPERS'
set -Eeuo pipefail
__runs=0 __skips=0 __block_line=0 __block_title=""
__background=()
PS4='+ ${__file}:${__lines[$LINENO]:-?}: '

__begin() {
  trap '{ __failed $? $LINENO "$BASH_COMMAND" 2>&3; } 3>&2 2>/dev/null' ERR
  trap '__stop_background' EXIT
  cd "$TEST_README_SANDBOX/project"
}
__end() {
  { set +x; } 2>/dev/null
  echo "test-readme: ${__runs} blocks ran, ${__skips} skipped"
}
__block() {
  __block_line=$1 __block_title=$2 __runs=$((__runs + 1))
  printf '\n== %s:%s (%s)\n' "$__file" "$1" "$2"
}
__skip() {
  __skips=$((__skips + 1))
  printf '\n== %s:%s (%s): not run: %s\n' "$__file" "$1" "$2" "$3"
}
__failed() {
  { set +x; } 2>/dev/null
  trap - ERR
  printf '\ntest-readme: FAILED at %s:%s (the block at %s:%s, under "%s"): exit status %s from\n  %s\n' \
    "$__file" "${__lines[$2]:-$__block_line}" "$__file" "$__block_line" "$__block_title" "$1" "$3" >&2
}
# Around a block that must exit with a given status: it runs in a subshell with
# `set -e`, so it stops at its first failure, and its status is compared.
__expect_begin() {
  trap - ERR
  set +e
}
__expect_end() {
  { set +x; } 2>/dev/null
  set -e
  trap '{ __failed $? $LINENO "$BASH_COMMAND" 2>&3; } 3>&2 2>/dev/null' ERR
  if [ "$2" -ne "$1" ]; then
    printf '\ntest-readme: FAILED: the block at %s:%s (under "%s") exited with status %s, not %s\n' \
      "$__file" "$__block_line" "$__block_title" "$2" "$1" >&2
    exit 1
  fi
  echo "(exited with status $2, as expected)"
}
# A background block: its own process group, stopped at the end of the run.
__server() {
  __background+=("$1")
  echo "$1" >>"$TEST_README_SANDBOX/background.pids"
  printf '+ %s:%s: %s\n  (in the background, process group %s; output in %s)\n' \
    "$__file" "$3" "$4" "$1" "$TEST_README_SANDBOX/server-$3.log" >&2
  wait_for_port "$2" "$1" 10
}
__stop_background() {
  local status=$? pid
  for pid in "${__background[@]}"; do
    stop_group "$pid"
    wait "$pid" 2>/dev/null || true
  done
  : >"$TEST_README_SANDBOX/background.pids"
  return "$status"
}
HELPERS
cat "$repo/scripts/lib.sh" >>"$sandbox/helpers.sh"

# The fixtures the blocks name.
host=$(rustc -vV | sed -n 's/^host: //p')
fixture_release() {
  make_release "$project/$1" "${1#release-}"
}
fixture_image() {
  python3 -c 'import random, sys; random.seed(sys.argv[1]); sys.stdout.buffer.write(random.randbytes(262144))' \
    "$1" >"$project/$1"
}
fixture_updater() {
  local path=$1 triple=${2:-$host} version=$3
  # A real build reporting $version, in its own target directory, seeded from the one
  # scripts/test.sh builds (the same crates and flags) so that only the client
  # compiles again.
  local target_dir=$target/readme-client
  if [ ! -d "$target_dir" ] && [ -d "$target/next" ]; then
    cp -a "$target/next" "$target_dir"
  fi
  echo "test-readme: building wavecast-update reporting $version as $path" >&2
  (cd "$repo" && WAVECAST_CLIENT_VERSION=$version CARGO_PROFILE_DEV_DEBUG=0 cargo build --locked \
    --quiet -p wavecast-client-cli --bin wavecast-update --target-dir "$target_dir")
  mkdir -p "$(dirname "$project/$path")"
  cp "$target_dir/debug/wavecast-update" "$project/$path"
  if [ "$triple" != "$host" ]; then
    # e_machine, the two bytes at offset 18 of an ELF header: 0 is no machine.
    printf '\0\0' | dd of="$project/$path" bs=1 seek=18 conv=notrunc status=none
    echo "test-readme: (a stand-in for the $triple build: the $host one, with an ELF header naming no machine, so that it does not run here)" >&2
  fi
}
fixture_bucket() {
  if [ -z "$moto" ]; then
    moto_server -H 127.0.0.1 -p "$s3_port" >"$sandbox/moto.log" 2>&1 &
    moto=$!
    wait_for_port "$s3_port" "$moto" 30
  fi
  python3 -c 'import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="PUT"), timeout=10).read()' \
    "http://127.0.0.1:$s3_port/$1"
}

echo "test-readme: sandbox $sandbox" >&2
(cd "$repo" && cargo build --bins --locked)
target=$(cd "$repo" && cargo metadata --format-version 1 --no-deps --locked |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
cp "$target/debug/wavecast" "$target/debug/wavecast-update" "$sandbox/bin/"

mkdir -p "$sandbox/stubs"
cat >"$sandbox/stubs/fw_setenv" <<EOF
#!/bin/sh
# A stand-in for U-Boot's fw_setenv: records its arguments.
echo "\$*" >>"$sandbox/fw_env"
EOF
chmod +x "$sandbox/stubs/fw_setenv"

cat >"$sandbox/gitconfig" <<'EOF'
[user]
	name = README example
	email = readme@example.invalid
[init]
	defaultBranch = main
[advice]
	detachedHead = false
EOF
export GIT_CONFIG_GLOBAL=$sandbox/gitconfig GIT_CONFIG_NOSYSTEM=1
git init -q --bare "$sandbox/github.git"
git -C "$project" init -q
git -C "$project" commit -q --allow-empty -m "the application"
git -C "$project" remote add origin "$sandbox/github.git"

cat >"$project/mix.json" <<'EOF'
{"region": {"eu": 0.3, "us": 0.7}, "tier": {"gold": 1, "free": 3}}
EOF
# shellcheck source=/dev/null
source "$sandbox/fixtures.sh"

export TEST_README_SANDBOX=$sandbox
export PATH="$sandbox/bin:$sandbox/stubs:$PATH"
export WAVECAST_NOW
WAVECAST_NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
export WAVECAST_NO_PROGRESS=1
export AWS_ACCESS_KEY_ID=readme AWS_SECRET_ACCESS_KEY=readme
unset AWS_SESSION_TOKEN AWS_PROFILE WAVECAST_KEY_PASSWORD

echo "test-readme: running the examples of $name (clock frozen at $WAVECAST_NOW)" >&2
status=0
bash "$sandbox/examples.sh" </dev/null || status=$?
echo "test-readme: $name: $([ "$status" -eq 0 ] && echo ok || echo FAILED) in $(($(date +%s) - started)) s" >&2
exit "$status"
