# shellcheck shell=bash
# Shell helpers shared by scripts/demo.sh and scripts/test-readme.sh. Source it; it
# defines functions only.

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
