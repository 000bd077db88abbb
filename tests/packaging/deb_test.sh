#!/usr/bin/env bash
# packaging_deb: builds the .deb of BUILD_DIR with `cpack -G DEB` (into
# WORK_DIR, not the build folder), installs it with dpkg -i, checks what a user
# gets (meshd/mesh-peer --version from /usr/bin, meshd.service, the installed
# meshd serving the installed pages on 127.0.0.1) and removes it again with
# dpkg --purge, also when a check fails (trap). Exit 77 (CTest: skipped) when
# it cannot run without touching what it did not install: no dpkg, not root
# and no passwordless sudo, a p2pmesh package or a meshd already installed.
# Usage: deb_test.sh BUILD_DIR CPACK WORK_DIR VERSION SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd) cpack=$2 work=$3 version=$4 source=$5
package=p2pmesh

say() { echo "packaging_deb: $*"; }
skip() { say "SKIPPED: $*"; exit 77; }
fail() { say "FAILED: $*" >&2; exit 1; }

command -v dpkg >/dev/null || skip "no dpkg (not a Debian system)"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    skip "needs root (or passwordless sudo) for dpkg -i"
  fi
fi
if dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -qv "not-installed"; then
  skip "a $package package is already on this machine ($(dpkg-query -W -f='${Version} ${Status}' $package)); not touching it"
fi
for path in /usr/bin/meshd /usr/bin/mesh-peer /usr/share/p2pmesh \
            /usr/lib/systemd/system/meshd.service /lib/systemd/system/meshd.service \
            /etc/systemd/system/meshd.service; do
  [ -e "$path" ] && skip "$path already exists; not overwriting it"
done
command -v dpkg-shlibdeps >/dev/null || fail "dpkg-shlibdeps not found (dpkg-dev; run tools/deps.sh)"

meshd_pid=
installed=0
cleanup() {
  local rc=$?
  if [ -n "$meshd_pid" ]; then kill "$meshd_pid" 2>/dev/null || true; wait "$meshd_pid" 2>/dev/null || true; fi
  if [ "$installed" = 1 ]; then
    say "removing the package (dpkg --purge $package)"
    if ! "${sudo[@]}" dpkg --purge "$package" >/dev/null; then
      say "dpkg --purge $package FAILED: remove it by hand" >&2
      rc=1
    fi
    if dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -qv "not-installed"; then
      say "$package still known to dpkg after --purge" >&2
      rc=1
    fi
    for path in /usr/bin/meshd /usr/bin/mesh-peer /usr/share/p2pmesh; do
      if [ -e "$path" ]; then say "$path left behind" >&2; rc=1; fi
    done
  fi
  if [ "$rc" = 0 ]; then rm -rf "$work"; else say "kept $work for a look"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

start=$SECONDS
rm -rf "$work"
mkdir -p "$work"
say "cpack -G DEB ($build)"
(cd "$build" && "$cpack" -G DEB --config "$build/CPackConfig.cmake" -B "$work") > "$work/cpack.log" 2>&1 \
  || { cat "$work/cpack.log"; fail "cpack -G DEB"; }
shopt -s nullglob
debs=("$work"/${package}_"${version}"_*.deb)
[ ${#debs[@]} = 1 ] || { cat "$work/cpack.log"; fail "expected one ${package}_${version}_<arch>.deb in $work, got: ${debs[*]:-none}"; }
deb=${debs[0]}
say "built $(basename "$deb") ($(du -h "$deb" | cut -f1)) in $((SECONDS - start)) s"
dpkg-deb --field "$deb" | sed "s/^/  /"
contents=$(dpkg-deb --contents "$deb")
for path in ./usr/bin/meshd ./usr/bin/mesh-peer ./usr/lib/systemd/system/meshd.service \
            ./usr/share/p2pmesh/web/index.html ./usr/share/p2pmesh/web/chat/index.html; do
  grep -q " $path\$" <<<"$contents" || fail "$path is not in the package"
done
if grep -Eq '/include/|\.a$|/cmake/|/web/test/' <<<"$contents"; then
  fail "development files or test pages in the package: $(grep -E '/include/|\.a$|/cmake/|/web/test/' <<<"$contents" | head -3)"
fi
depends=$(dpkg-deb --field "$deb" Depends)
[[ "$depends" == *libc6* ]] || fail "Depends has no libc6 (dpkg-shlibdeps not run?): '$depends'"
[ "$(dpkg-deb --field "$deb" Version)" = "$version" ] || fail "package version is not $version"

say "dpkg -i $(basename "$deb")"
installed=1
"${sudo[@]}" dpkg -i "$deb"
dpkg-query -W -f='${Status}\n' "$package" | grep -q "install ok installed" || fail "$package not installed"

check_version() {
  local out
  out=$("$1" --version) || fail "$1 --version exited non-zero"
  [ "$out" = "$2" ] || fail "$1 --version printed '$out', want '$2'"
  say "$1 --version: $out"
}
check_version /usr/bin/meshd "meshd $version"
check_version /usr/bin/mesh-peer "mesh-peer $version"

unit=
for path in /usr/lib/systemd/system/meshd.service /lib/systemd/system/meshd.service; do
  [ -f "$path" ] && { unit=$path; break; }
done
[ -n "$unit" ] || fail "meshd.service is not installed"
grep -qx 'ExecStart=/usr/bin/meshd' "$unit" || fail "$unit: no ExecStart=/usr/bin/meshd"
grep -qx 'Environment=MESHD_WEB_ROOT=/usr/share/p2pmesh/web' "$unit" || fail "$unit: web root is not /usr/share/p2pmesh/web"
if command -v systemd-analyze >/dev/null; then
  out=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify $unit: $out"
  [ -z "$out" ] || fail "systemd-analyze verify $unit warns: $out"
  say "systemd-analyze verify $unit: ok"
else
  say "systemd-analyze not found: meshd.service not verified (skipped that part)"
fi

# What a user of the package sees at http://localhost:8000/: the installed
# meshd (no --web-root: its automatic choice) serving the installed pages.
# Here on 127.0.0.1 and an ephemeral port.
/usr/bin/meshd --host 127.0.0.1 --port 0 --port-file "$work/port" 2>"$work/meshd.log" >/dev/null &
meshd_pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || { cat "$work/meshd.log"; fail "meshd did not start"; }
port=$(cat "$work/port")
grep -q "web root '/usr/share/p2pmesh/web'" "$work/meshd.log" \
  || { cat "$work/meshd.log"; fail "installed meshd does not serve /usr/share/p2pmesh/web"; }
http_get() {  # prints status line and body of http://127.0.0.1:$port$1
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$1" >&3
  timeout 10 cat <&3
  exec 3<&-
}
page=$(http_get /)
grep -q '^HTTP/1.1 200' <<<"$page" && grep -q '<title>p2pmesh dashboard</title>' <<<"$page" \
  || fail "GET / is not the dashboard: $(head -c 300 <<<"$page")"
page=$(http_get /chat/)
grep -q '^HTTP/1.1 200' <<<"$page" || fail "GET /chat/: $(head -1 <<<"$page")"
if [ -f "$source/web/p2pmesh.mjs" ]; then
  page=$(http_get /p2pmesh.mjs)
  grep -q '^HTTP/1.1 200' <<<"$page" || fail "GET /p2pmesh.mjs: $(head -1 <<<"$page")"
  say "installed meshd serves /, /chat/ and /p2pmesh.mjs from /usr/share/p2pmesh/web"
else
  say "web/p2pmesh.mjs not built (wasm preset): /chat/ of this package cannot work; not checked"
  say "installed meshd serves / and /chat/ from /usr/share/p2pmesh/web"
fi
kill "$meshd_pid"
wait "$meshd_pid" || fail "meshd exited non-zero on SIGTERM"
meshd_pid=
say "ok in $((SECONDS - start)) s"
