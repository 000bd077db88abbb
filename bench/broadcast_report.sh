#!/usr/bin/env bash
# Regenerates docs/broadcast.md: mesh-sim runs the three broadcast strategies on
# the same scenarios and seed, at several sizes, steady and under churn.
#   bench/broadcast_report.sh [build/release/bin/mesh-sim] [sizes...]
set -euo pipefail
cd "$(dirname "$0")/.."
sim=${1:-build/release/bin/mesh-sim}
shift || true
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100 300 1000)
out=docs/broadcast.md
rows=$(mktemp)

for peers in "${sizes[@]}"; do
  for churn in 0 5; do
    broadcasts=50
    [ "$churn" = 0 ] || broadcasts=300
    for strategy in reference ours flooding; do
      echo "mesh-sim --peers $peers --strategy $strategy --churn $churn ..." >&2
      "$sim" --peers "$peers" --strategy "$strategy" --churn "$churn" --broadcasts "$broadcasts" \
        --seed 1 --json >> "$rows"
    done
  done
done

{
  cat docs/broadcast-intro.md
  echo
  echo "| peers | churn %/min | strategy | delivery | RMR | latency ratio | last delivery ms | max hops | routing bytes/bcast | overlay diameter | CPU ms/bcast | RSS MB |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  python3 - "$rows" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(f"| {r['peers']} | {r['churn']:g} | {r['strategy']} | {r['delivery_ratio']*100:.3f}% | "
          f"{r['rmr']:.4f} | {r['latency_ratio']:.2f} | {r['last_delivery_ms']:.0f} | {r['max_hops']} | "
          f"{r['routing_bytes_per_broadcast']:.0f} | {r['overlay_diameter']} | "
          f"{r['cpu_ms_per_broadcast']:.1f} | {r['peak_rss_mb']:.0f} |")
PY
  echo
  echo "Raw results (one JSON object per run):"
  echo
  echo '```'
  cat "$rows"
  echo '```'
} > "$out"
rm -f "$rows"
echo "wrote $out" >&2
