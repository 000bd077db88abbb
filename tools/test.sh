#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs dependencies, builds
# the release preset (warnings are errors) and runs every test with CTest,
# then fuzzes the core and meshd (the fuzz preset: each libFuzzer target of
# tests/fuzz for P2PMESH_FUZZ_SECONDS, default 60, the parsers half of it;
# any crash, leak or timeout fails), and runs the core, meshd, native peer
# and NAT tests again under the asan preset (ASan + UBSan; the long
# simulations left out: docs/security.md, "Sanitizers in CI").
#   tools/test.sh            all of it (what CI runs, .ci/run)
#   tools/test.sh --no-asan  without the asan build and tests (local runs)
#   tools/test.sh --no-fuzz  without the fuzzing (local runs)
set -euo pipefail
cd "$(dirname "$0")/.."

asan=1
fuzz=1
for arg in "$@"; do
  case "$arg" in
    --asan) asan=1 ;;  # the default; kept for older scripts
    --no-asan) asan=0 ;;
    --no-fuzz) fuzz=0 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done

tools/deps.sh
jobs=$(nproc)

# run_preset PRESET [--target T...] [CTEST ARGS...]: configure, build (all,
# or the targets given), run the tests.
run_preset() {
  local preset=$1
  shift
  local targets=()
  while [ "${1:-}" = --target ]; do targets+=(--target "$2"); shift 2; done
  local started=$SECONDS
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs" "${targets[@]}"
  echo "test.sh: $preset built in $((SECONDS - started)) s"
  started=$SECONDS
  ctest --preset "$preset" -j "$jobs" "$@"
  echo "test.sh: $preset tests ran in $((SECONDS - started)) s"
}

# Under ASan + UBSan (a Debug build, 3-10x slower; -O1 ran the tests in 202
# s instead of 288 s but took 16 min instead of 8 to build): the tests labelled core,
# server (meshd in-process and as a program, plain, two loops, TLS, cluster,
# abuse), native (the peers over libwebrtc, which itself is not instrumented:
# our code around it is) and nat (meshd, mesh-peer and coturn in namespaces),
# but the long simulations, which the release run covers and which take 13
# of the 15 core minutes under ASan, and nat_mesh (it needs the browser
# build in the asan tree). Not the browser and packaging tests. The whole
# suite does not fit CI's 45 minutes on 2 cores (docs/security.md,
# "Sanitizers in CI").
asan_skip='^(Scenario|ParallelBatch)\.|^MeshNetwork\.(ThousandSequentialJoins|AJoinCostsTheGroup)'
asan_skip+='|^RoutingProperty\.EveryReachablePeer|^BroadcastTreeProperty\.(SpansComponent|DepthLimitBounds)'
asan_skip+='|^nat_mesh$'


# The browser peer (web/p2pmesh.mjs + .wasm), used by the browser tests.
cmake --preset wasm >/dev/null
cmake --build --preset wasm -j "$jobs"
echo "test.sh: dependencies and the browser peer ready after $SECONDS s"

# fuzz_one TARGET SECONDS: one libFuzzer target of tests/fuzz/ from a copy
# of its committed corpus (the repository is never written), niced (the
# machine may be shared); non-zero (after printing the reproducers) on a
# crash, leak or timeout.
fuzz_one() {
  local target=$1 seconds=$2
  local name=${target%_fuzz}
  local work=build/fuzz/run/$name
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp tests/fuzz/corpus/"$name"/* "$work/corpus/"
  # MeshNode scripts go deeper when long: no slow growth of the input size.
  local extra=()
  [ "$name" = mesh_node ] && extra=(-len_control=0)
  if ! nice -n 10 build/fuzz/bin/"$target" -max_total_time="$seconds" -max_len=4096 \
      -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${extra[@]}" \
      -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/log" 2>&1; then
    tail -n 60 "$work/log" >&2
    echo "test.sh: $target failed (log: $work/log); reproducer(s):" >&2
    ls -1 "$work"/artifacts/* >&2 || true
    echo "test.sh: replay with build/fuzz/bin/$target REPRODUCER" >&2
    return 1
  fi
  echo "test.sh: $target: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$work/log" || tail -n 1 "$work/log")"
}

# Each target of tests/fuzz/, as many at once as there are cores (each
# fuzzer is one process on one core; nothing else runs meanwhile). The two
# deep targets (MeshNode and meshd scripts: thousands of coverage points,
# still finding new paths at the end) get the whole time and go first; the
# three parsers (a few hundred points, flat after seconds) get half, which
# fills two cores in 2 rounds instead of 3.
run_fuzz() {
  run_preset fuzz  # builds the targets; CTest replays each committed corpus
  local seconds=${P2PMESH_FUZZ_SECONDS:-60}
  local started=$SECONDS failed=0 target pids=() run time
  # TARGET:SECONDS, the deep ones first.
  local runs=("mesh_node_fuzz:$seconds" "meshd_fuzz:$seconds")
  for target in tests/fuzz/*_fuzz.cpp; do
    target=$(basename "$target" .cpp)
    case "$target" in
      mesh_node_fuzz|meshd_fuzz) ;;
      *) runs+=("$target:$(((seconds + 1) / 2))") ;;
    esac
  done
  for run in "${runs[@]}"; do
    target=${run%:*}
    time=${run#*:}
    echo "test.sh: fuzzing $target for ${time} s"
    fuzz_one "$target" "$time" &
    pids+=($!)
    if [ "${#pids[@]}" -ge "$jobs" ]; then
      wait "${pids[0]}" || failed=1
      pids=("${pids[@]:1}")
    fi
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  [ "$failed" = 0 ] || exit 1
  echo "test.sh: fuzzing took $((SECONDS - started)) s"
}

run_preset release
# Only what those tests need is built (not the native peers, mesh-peer or
# the demo: libwebrtc's headers make them the slowest to compile).
if [ "$asan" = 1 ]; then
  run_preset asan --target tests_core --target tests_server --target tests_native --target tests_nat \
    -L '^(core|server|native|nat)$' -E "$asan_skip"
fi
if [ "$fuzz" = 1 ]; then run_fuzz; fi
echo "test.sh: all tests passed in $((SECONDS / 60)) min $((SECONDS % 60)) s"
