#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs dependencies, builds
# the release preset (warnings are errors) and runs every test with CTest.
#   tools/test.sh            release build, all tests
#   tools/test.sh --asan     also the asan preset (ASan + UBSan), all tests
set -euo pipefail
cd "$(dirname "$0")/.."

asan=0
for arg in "$@"; do
  case "$arg" in
    --asan) asan=1 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done

tools/deps.sh
jobs=$(nproc)

run_preset() {
  cmake --preset "$1" >/dev/null
  cmake --build --preset "$1" -j "$jobs"
  ctest --preset "$1" -j "$jobs"
}

# The browser peer (web/p2pmesh.mjs + .wasm), used by the browser tests.
cmake --preset wasm >/dev/null
cmake --build --preset wasm -j "$jobs"

run_preset release
if [ "$asan" = 1 ]; then run_preset asan; fi
echo "test.sh: all tests passed"
