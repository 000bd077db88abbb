#!/usr/bin/env bash
# The membership plane's cost on meshd against group size (issue #17): one
# group of N members, meshd --threads 2 spawned by meshd-load on this
# machine, for each N in --sizes, two ways:
#   before: every member re-publishes its status every 10 s, 20 link changes
#           a second in the group, no batching (what peers sent before #17);
#   after:  paced statuses (10 unchanged statuses a second in the whole
#           group), 5%/min churn (a newcomer's snapshot, its links in one
#           status, links shed for it, the departures: meshd-load
#           --churn-announce status), 200 ms batch frames (what live peers
#           send now).
# Prints one markdown table row per run: N, mode, frames/s meshd delivered,
# frames and updates per member per second, meshd CPU, status p50/p99.
#   bench/membership_curve.sh [--load PATH] [--sizes "100 300 1000 3000 10000"]
#                             [--before-max 3000]
# "before" stops at --before-max members: N^2/10 deliveries a second do not
# fit one meshd beyond it (3,000: ~1M/s).
set -euo pipefail
cd "$(dirname "$0")/.."

load=build/release/bin/meshd-load
sizes="100 300 1000 3000 10000"
before_max=3000
while [ $# -gt 0 ]; do
  case "$1" in
    --load) load=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --before-max) before_max=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "membership_curve.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -x "$load" ] || { echo "membership_curve.sh: $load not built (cmake --build --preset release)" >&2; exit 1; }

field() { grep -o "$1=[^ ]*" <<<"$2" | cut -d= -f2; }

run() {  # N mode flags...
  local n=$1 mode=$2
  shift 2
  # A big group's join storm (every newcomer's snapshot) drains first.
  local warmup=5
  [ "$n" -ge 3000 ] && warmup=20
  local line
  line=$("$load" --mode mesh --groups 1 --peers "$n" --meshd-arg=--threads=2 --status-interval 10 \
    --warmup "$warmup" --duration 8 "$@" 2>&1 | tail -1)
  local p50 p99
  p50=$(field status_p50 "$line"); p99=$(field status_p99 "$line")
  printf '| %s | %s | %s | %s | %s | %s | %s / %s ms |\n' "$n" "$mode" \
    "$(field delivered "$line")" "$(field frames_per_peer "$line")" \
    "$(field updates_per_peer "$line")" "$(field meshd_cpu "$line")" \
    "$((${p50%us} / 1000))" "$((${p99%us} / 1000))"
}

echo "| members | peers send | frames/s delivered | frames per member | updates per member | meshd CPU | status p50 / p99 |"
echo "|---|---|---|---|---|---|---|"
for n in $sizes; do
  if [ "$n" -le "$before_max" ]; then
    run "$n" before --link-changes 20
  fi
  run "$n" after --refresh-per-s 10 --churn 5 --link-changes 0 --batch-ms 200
done
