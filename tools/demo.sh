#!/usr/bin/env bash
# The main job, from a fresh machine: installs dependencies, builds mesh-demo
# (with meshd and mesh-peer) in the release preset and runs it: meshd, native
# peers (12 in group `default`, 4 in `group2`) and the observer dashboard at
# http://localhost:8000/. Ctrl-C stops everything. Extra arguments go to
# mesh-demo (see build/release/bin/mesh-demo --help), e.g.
#   tools/demo.sh --peers 20 --port 8080
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
cmake --preset release >/dev/null
echo "demo.sh: building mesh-demo, meshd and mesh-peer (release)..."
cmake --build --preset release -j "$(nproc)" --target mesh-demo >/dev/null
exec build/release/bin/mesh-demo "$@"
