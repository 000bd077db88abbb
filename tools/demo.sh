#!/usr/bin/env bash
# The main job, from a fresh machine: installs dependencies, builds the
# browser peer (wasm preset, for the chat page) and mesh-demo (with meshd and
# mesh-peer) in the release preset and runs it: meshd, native
# peers (12 in group `default`, 4 in `group2`) and the observer dashboard at
# http://localhost:8000/. Ctrl-C stops everything. Extra arguments go to
# mesh-demo (see build/release/bin/mesh-demo --help), e.g.
#   tools/demo.sh --peers 20 --port 8080
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
# The browser peer first: meshd's web root (the chat page) includes it.
cmake --preset wasm >/dev/null
echo "demo.sh: building the browser peer (wasm)..."
cmake --build --preset wasm -j "$(nproc)" >/dev/null
cmake --preset release >/dev/null
echo "demo.sh: building mesh-demo, meshd and mesh-peer (release)..."
cmake --build --preset release -j "$(nproc)" --target mesh-demo >/dev/null
exec build/release/bin/mesh-demo "$@"
