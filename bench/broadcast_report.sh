#!/usr/bin/env bash
# Regenerates docs/broadcast.md and its plots (docs/broadcast-*.svg): mesh-sim
# runs the three broadcast strategies on the same scenarios and seed, steady
# at several sizes, and at one size under several churn rates; then ours in
# mixed groups (half the peers reference-like) under the same churn rates.
#   bench/broadcast_report.sh [--sim PATH] [--sizes "100 300 1000 2000"]
#                             [--churn-peers 300] [--churns "0 1 2 5 10"]
# Also: cmake --build --preset release --target broadcast_report
# Needs python3 (table) and gnuplot (plots; tools/deps.sh installs gnuplot-nox).
set -euo pipefail
cd "$(dirname "$0")/.."

sim=build/release/bin/mesh-sim
sizes="100 300 1000 2000"
churn_peers=300
churns="0 1 2 5 10"
while [ $# -gt 0 ]; do
  case "$1" in
    --sim) sim=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --churn-peers) churn_peers=$2; shift 2 ;;
    --churns) churns=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "broadcast_report.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -x "$sim" ] || { echo "broadcast_report.sh: $sim not built (cmake --build --preset release)" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "broadcast_report.sh: gnuplot missing (tools/deps.sh)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# run <file> <peers> <churn>: one line of JSON per strategy appended to file.
run() {
  local broadcasts=50
  [ "$3" = 0 ] || broadcasts=300
  for strategy in reference ours flooding; do
    echo "mesh-sim --peers $2 --strategy $strategy --churn $3 --broadcasts $broadcasts --seed 1" >&2
    "$sim" --peers "$2" --strategy "$strategy" --churn "$3" --broadcasts "$broadcasts" \
      --seed 1 --json >> "$1"
  done
}
for peers in $sizes; do run "$work/by_peers.jsonl" "$peers" 0; done
for churn in $churns; do run "$work/by_churn.jsonl" "$churn_peers" "$churn"; done
for churn in $churns; do
  broadcasts=300
  echo "mesh-sim --peers $churn_peers --reference-share 50 --churn $churn --broadcasts $broadcasts --seed 1" >&2
  "$sim" --peers "$churn_peers" --reference-share 50 --churn "$churn" --broadcasts "$broadcasts" \
    --seed 1 --json >> "$work/mixed.jsonl"
done

# One data file per (series, strategy) for gnuplot, and the Markdown table.
python3 - "$work" > "$work/table.md" <<'PY'
import json, sys
work = sys.argv[1]
def rows(name):
    return [json.loads(line) for line in open(f"{work}/{name}.jsonl")]
for series, key in (("by_peers", "peers"), ("by_churn", "churn")):
    for strategy in ("reference", "ours", "flooding"):
        with open(f"{work}/{series}_{strategy}.dat", "w") as out:
            for r in rows(series):
                if r["strategy"] == strategy:
                    out.write(f"{r[key]} {r['delivery_ratio']*100} {r['rmr']} {r['latency_ratio']}\n")
print("| peers | churn %/min | strategy | delivery | RMR | latency ratio | last delivery ms | max hops "
      "| depth (relays) | routing bytes/bcast | overlay diameter | CPU ms/bcast | wall s | RSS MB |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows("by_peers") + rows("by_churn"):
    print(f"| {r['peers']} | {r['churn']:g} | {r['strategy']} | {r['delivery_ratio']*100:.3f}% | "
          f"{r['rmr']:.4f} | {r['latency_ratio']:.2f} | {r['last_delivery_ms']:.0f} | {r['max_hops']} | "
          f"{r['broadcast_depth']} | "
          f"{r['routing_bytes_per_broadcast']:.0f} | {r['overlay_diameter']} | "
          f"{r['cpu_ms_per_broadcast']:.1f} | {r['wall_seconds']:.0f} | {r['peak_rss_mb']:.0f} |")
PY
python3 - "$work" > "$work/mixed.md" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(f"{sys.argv[1]}/mixed.jsonl")]
print("| peers | reference-like | churn %/min | ours to ours | missed | all to all | duplicates "
      "| RMR | latency ratio | max hops |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['peers']} | {r['reference_peers']} | {r['churn']:g} | "
          f"{r['ours_delivery_ratio']*100:.3f}% | {r['ours_missed']} | {r['delivery_ratio']*100:.3f}% | "
          f"{r['duplicates']} | {r['rmr']:.4f} | {r['latency_ratio']:.2f} | {r['max_hops']} |")
PY

# plot <series> <x label> <column> <y label> <file> [logscale x]
plot() {
  gnuplot <<EOF
set terminal svg size 520,340 font "sans,11" background "white"
set output "docs/$5"
set xlabel "$2"
set ylabel "$4"
set key outside bottom center horizontal
set grid
$([ "${6:-}" = log ] && echo "set logscale x")
plot "$work/$1_reference.dat" using 1:$3 with linespoints title "reference", \
     "$work/$1_ours.dat" using 1:$3 with linespoints title "ours", \
     "$work/$1_flooding.dat" using 1:$3 with linespoints title "flooding"
EOF
}
plot by_peers "peers (steady state)" 2 "delivery %" broadcast-delivery-peers.svg log
plot by_peers "peers (steady state)" 3 "RMR" broadcast-rmr-peers.svg log
plot by_peers "peers (steady state)" 4 "latency ratio" broadcast-latency-peers.svg log
plot by_churn "churn, % of $churn_peers peers per minute" 2 "delivery %" broadcast-delivery-churn.svg
plot by_churn "churn, % of $churn_peers peers per minute" 3 "RMR" broadcast-rmr-churn.svg
plot by_churn "churn, % of $churn_peers peers per minute" 4 "latency ratio" broadcast-latency-churn.svg

{
  cat docs/broadcast-intro.md
  echo
  echo "## Results"
  echo
  echo "Generated by \`bench/broadcast_report.sh\` on $(date -u +%Y-%m-%d) ($(nproc) cores); seed 1."
  echo
  cat "$work/table.md"
  echo
  echo "### Mixed groups"
  echo
  echo "Ours with half the peers reference-like (\`mesh-sim --reference-share 50\`,"
  echo "$churn_peers peers, 300 broadcasts from random peers of both kinds). \"ours to"
  echo "ours\": broadcasts of our peers at our peers alive throughout; \"all to all\":"
  echo "every broadcast at every peer alive throughout (reference peers lose what"
  echo "their phantom links and unrepaired relays drop); duplicates: copies a peer"
  echo "delivered twice, at any peer."
  echo
  cat "$work/mixed.md"
  echo
  echo "## Plots"
  echo
  for what in delivery rmr latency; do
    echo "![$what vs peers](broadcast-$what-peers.svg) ![$what vs churn](broadcast-$what-churn.svg)"
    echo
  done
  echo "Raw results (one JSON object per run):"
  echo
  echo '```'
  cat "$work/by_peers.jsonl" "$work/by_churn.jsonl" "$work/mixed.jsonl"
  echo '```'
} > docs/broadcast.md
echo "wrote docs/broadcast.md and docs/broadcast-*.svg" >&2
