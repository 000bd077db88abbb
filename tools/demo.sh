#!/usr/bin/env bash
# The main job, from a fresh machine: installs dependencies, builds the release
# preset and runs the mesh. Until the live demo (meshd + native peers +
# dashboard) lands, this runs the core in-process: 20 simulated peers join a
# mesh one after another and broadcast. Extra arguments go to mesh-sim.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" >/dev/null
exec build/release/bin/mesh-sim --peers 30 --broadcasts 20 "$@"
