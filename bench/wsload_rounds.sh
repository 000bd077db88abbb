#!/usr/bin/env bash
# Fan-out figures of meshd with wsload (../shared/tools/wsload.c, compiled
# here), a fresh meshd per run, configurations alternating round by round
# (a burst of load from elsewhere lands on all of them alike). Prints one
# line per run: delivered msgs/s, echo p50/p99 (wsload's line) and meshd's
# CPU over the run (/proc/PID/stat, user + system). Not a pass/fail test.
#
#   bench/wsload_rounds.sh ROUNDS 'LABEL:MESHD_BINARY:MESHD ARGS' ...
#   LOAD='1000 100 2 8 5' (wsload's CONNS GROUP_SIZE PUBS WINDOW SECONDS)
#
# e.g. bench/wsload_rounds.sh 3 "t1:build/release/bin/meshd:--threads 1" \
#        "t2:build/release/bin/meshd:--threads 2"
# meshd runs with --rate 0 (wsload's publishers are not rate-limited clients).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
wsload_src=${WSLOAD_SRC:-$root/../shared/tools/wsload.c}
wsload=${TMPDIR:-/tmp}/p2pmesh-wsload
[ -x "$wsload" ] && [ "$wsload" -nt "$wsload_src" ] || gcc -O2 -o "$wsload" "$wsload_src"
load=${LOAD:-1000 100 2 8 5}
rounds=${1:?usage: $0 ROUNDS 'LABEL:MESHD:ARGS' ...}
shift
port=$((20000 + RANDOM % 20000))
for round in $(seq 1 "$rounds"); do
  for spec in "$@"; do
    label=${spec%%:*}
    rest=${spec#*:}
    binary=${rest%%:*}
    args=${rest#*:}
    port=$((port + 1))
    # shellcheck disable=SC2086  # ARGS are words
    "$binary" --host 127.0.0.1 --port "$port" --rate 0 --web-root '' --log-level warn \
      --max-connections 20000 $args >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
    ticks0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    # shellcheck disable=SC2086
    out=$("$wsload" 127.0.0.1 "$port" $load 2>&1 | tr '\n' ' ')
    ticks1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    cpu=$(awk -v t=$((ticks1 - ticks0)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }')
    echo "round $round $label: meshd CPU ${cpu} s :: ${out#wsload: }"
  done
done
