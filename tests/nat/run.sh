#!/usr/bin/env bash
# Runs one NAT test file (tests/nat/NAME.test.mjs) with node's test runner,
# after checking that this machine can build the namespace network. When it
# cannot (not root, ip/nft/turnserver missing, no network namespaces), prints
# why and exits 77, which CTest reports as SKIPPED (SKIP_RETURN_CODE), never
# as passed.
#
# Usage: run.sh NAME [node options...]
# Environment: MESHD, MESH_PEER, P2PMESH_WEB_ROOT (CTest sets them), TURNSERVER.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=${1:?usage: run.sh NAME}
shift
skip=77

reason=$(bash "$here/topology.sh" check 2>&1)
if [ $? -ne 0 ]; then
  echo "SKIPPED nat_$name: $reason"
  exit $skip
fi
turnserver=${TURNSERVER:-turnserver}
if ! command -v "$turnserver" >/dev/null 2>&1; then
  echo "SKIPPED nat_$name: $turnserver (coturn) is not installed (apt-get install coturn, or tools/deps.sh)"
  exit $skip
fi
if ! command -v ss >/dev/null 2>&1; then
  echo "SKIPPED nat_$name: ss (iproute2) is not installed"
  exit $skip
fi
exec node --test --test-reporter=spec "$@" "$here/$name.test.mjs"
