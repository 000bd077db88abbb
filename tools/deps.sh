#!/usr/bin/env bash
# Installs every Debian package the project needs. Idempotent and quiet when
# everything is already present. Usage: tools/deps.sh [--with-browser]
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libgtest-dev libgmock-dev libbenchmark-dev
  libprotozero-dev libprotobuf-dev protobuf-compiler
  libboost1.81-dev libboost-json1.81-dev
  libspdlog-dev libfmt-dev libcli11-dev
  libssl-dev openssl   # meshd TLS; the openssl CLI makes the tests' throwaway PKI
  emscripten chromium nodejs
  gnuplot-nox
  libtgowt-dev
  coturn nftables iproute2   # tests/nat: STUN/TURN server, NAT routers, namespaces
  nats-server libnats-dev    # meshd --nats (cluster): the NATS C client, and the servers of its tests
  libjwt-dev                 # meshd --auth-key: JWT verification
  libsodium-dev              # native peers: Ed25519 keys of signed broadcasts
  clang libclang-rt-14-dev llvm   # the fuzz preset: clang++, libFuzzer + sanitizer runtimes, llvm-symbolizer
  dpkg-dev file   # cpack -G DEB: dpkg-shlibdeps computes the .deb dependencies
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -q >/dev/null
  $sudo_cmd apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# Browser tests: playwright-core only (it drives the Debian chromium above;
# never download a browser). Reinstalled when the lock file changes.
browser_tests="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
installed="$browser_tests/node_modules/.package-lock.json"
if [ ! -f "$installed" ] || [ "$browser_tests/package-lock.json" -nt "$installed" ]; then
  command -v npm >/dev/null || { echo "deps: npm not found (it comes with nodejs)" >&2; exit 1; }
  echo "deps: npm ci in tests/browser"
  (cd "$browser_tests" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
