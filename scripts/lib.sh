# shellcheck shell=bash
# Shell helpers shared by the scripts: demo.sh, test-readme.sh, test.sh,
# windows-unit-tests.sh, install-deps.sh, cross.sh and deb.sh. Source it; it defines
# functions only.

# Prints a TCP port on 127.0.0.1 that nothing listens on (the kernel's choice).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for_port PORT PID [SECONDS]: waits until 127.0.0.1:PORT accepts connections,
# for at most SECONDS (default 10), while process PID lives. Fails, saying why, if
# PID exits first or the time runs out.
wait_for_port() {
  local port=$1 pid=$2 tries=$((${3:-10} * 10))
  while [ "$tries" -gt 0 ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "error: the process meant to listen on 127.0.0.1:$port (pid $pid) exited" >&2
      return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
    tries=$((tries - 1))
  done
  echo "error: nothing listens on 127.0.0.1:$port after ${3:-10} s" >&2
  return 1
}

# make_release DIR VERSION: a small release folder of a pretend app: an executable
# `bin/app` that prints its version, a `share/doc/README`, and a text file that
# changes a little from version to version (so a publish builds patches).
make_release() {
  local dir=$1 version=$2
  mkdir -p "$dir/bin" "$dir/share/doc"
  printf '#!/bin/sh\necho "hello from app %s"\n' "$version" >"$dir/bin/app"
  chmod 0755 "$dir/bin/app"
  printf 'App %s\n' "$version" >"$dir/share/doc/README"
  { echo "numbers for $version"; seq 1 3000; } >"$dir/share/numbers.txt"
}

# group_alive PGID: whether a process of process group PGID is still running (zombies
# aside). Reads /proc, so it needs no procps.
group_alive() {
  local pgid=$1 stat fields
  for stat in /proc/[0-9]*/stat; do
    { read -r fields <"$stat"; } 2>/dev/null || continue
    # "PID (COMM) STATE PPID PGRP ...": COMM may hold spaces and parentheses.
    read -r -a fields <<<"${fields##*) }"
    if [ "${fields[2]}" = "$pgid" ] && [ "${fields[0]}" != Z ]; then
      return 0
    fi
  done
  return 1
}

# stop_group PGID: sends SIGTERM to process group PGID and waits until it is gone,
# for at most 5 s, then sends SIGKILL.
stop_group() {
  local pgid=$1 tries=50
  kill -TERM -- "-$pgid" 2>/dev/null || return 0
  while group_alive "$pgid"; do
    tries=$((tries - 1))
    if [ "$tries" -eq 0 ]; then
      echo "warning: process group $pgid did not stop on SIGTERM: killing it" >&2
      kill -KILL -- "-$pgid" 2>/dev/null || true
      return 0
    fi
    sleep 0.1
  done
}

# kill_leftovers WHAT LISTER [ARGS...]: gives the processes LISTER ARGS prints (one
# `pid stat args` line each) two seconds to end, then lists and kills those still
# running as left over by WHAT. Fails when any were.
kill_leftovers() {
  local what=$1 leftovers
  shift
  for _ in $(seq 20); do
    leftovers=$("$@")
    [ -z "$leftovers" ] && return 0
    sleep 0.1
  done
  echo "error: $what left these processes running; killing them:" >&2
  echo "$leftovers" >&2
  # shellcheck disable=SC2046 # one argument per process id
  kill -KILL $(awk '{print $1}' <<<"$leftovers") 2>/dev/null || true
  return 1
}

# test_counts LOG: `N passed, M failed`, summed over the `test result:` lines of the
# cargo test output in LOG.
test_counts() {
  local passed failed
  passed=$(grep -Eo 'test result: [A-Za-z]+\. [0-9]+ passed' "$1" | awk '{s += $4} END {print s + 0}')
  failed=$(grep -Eo 'test result: [A-Za-z]+\. [0-9]+ passed; [0-9]+ failed' "$1" | awk '{s += $6} END {print s + 0}')
  echo "$passed passed, $failed failed"
}

# apt_install PACKAGE...: installs Debian packages (through sudo unless root), saying
# which; nothing when none are given.
apt_install() {
  [ $# -gt 0 ] || return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: $*" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# pip_install PACKAGE: installs a PyPI package for the system's python3. Debian's
# python3 refuses installs outside a virtual environment (PEP 668); the machines these
# scripts run on exist to build and test, so it is installed all the same.
pip_install() {
  echo "installing: $1 (pip)" >&2
  python3 -m pip install --quiet "$1" 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages "$1"
}
