#!/usr/bin/env bash
# The NAT test network: network namespaces, veth pairs and nftables NATs.
# Nothing here touches the namespace this script runs in: every link is made
# directly between two of the new namespaces, so no packet can leave them.
#
# Usage: topology.sh up PREFIX     build it (fails if PREFIX-* exists)
#        topology.sh down PREFIX   remove it (idempotent, never fails)
#        topology.sh check         can this machine build it? (exit 0 or 1 + reason)
#
#                         PREFIX-inet  ("the internet", ip_forward on)
#                 lo: 192.0.2.1/32 (meshd, coturn)
#          /                   |                      \
#   198.51.100.1/30     198.51.100.5/30          203.0.113.1/30
#          |                   |                        |
#   wan 198.51.100.2    wan 198.51.100.6         wan 203.0.113.2
#   PREFIX-ra            PREFIX-rb                PREFIX-rs
#   port-preserving      port-preserving          symmetric NAT
#   NAT (masquerade)     NAT (masquerade)         (masquerade random)
#   lan 10.0.1.1/24      lan 10.0.2.1/24          lan 10.0.3.1/24
#          |                   |                        |
#   lan 10.0.1.2/24      lan 10.0.2.2/24          lan 10.0.3.2/24
#   PREFIX-ha            PREFIX-hb                PREFIX-hs      (homes)
#
# Every router drops unsolicited packets from its wan side (`ct state new`),
# as home routers do: NOTES-networks.md explains why port preservation needs
# it. The internet has no route to 10.0.0.0/8, so private addresses never
# cross it. Every namespace has lo up.
set -Eeuo pipefail

homes=(a b s)
declare -A wan_inet=([a]=198.51.100.1 [b]=198.51.100.5 [s]=203.0.113.1)
declare -A wan_router=([a]=198.51.100.2 [b]=198.51.100.6 [s]=203.0.113.2)
declare -A lan_net=([a]=10.0.1 [b]=10.0.2 [s]=10.0.3)
declare -A nat_kind=([a]=masquerade [b]=masquerade [s]="masquerade random")

need_tools() {
  local missing=()
  for tool in ip nft; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "missing programs: ${missing[*]} (apt-get install iproute2 nftables)"
    return 1
  fi
}

down() {
  local prefix=$1
  # Processes still running inside the namespaces keep nothing alive: deleting
  # a namespace name unmounts it; veth pairs vanish with the last namespace
  # holding one end.
  for ns in "$prefix-inet" "${homes[@]/#/$prefix-r}" "${homes[@]/#/$prefix-h}"; do
    if [ -e "/run/netns/$ns" ]; then
      # Kill what runs there first (only processes inside this namespace).
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
      ip netns del "$ns" 2>/dev/null || true
    fi
  done
  return 0
}

up() {
  local prefix=$1
  need_tools || exit 1
  local inet="$prefix-inet"
  for ns in "$inet" "${homes[@]/#/$prefix-r}" "${homes[@]/#/$prefix-h}"; do
    if [ -e "/run/netns/$ns" ]; then echo "namespace $ns exists already" >&2; exit 1; fi
  done
  ip netns add "$inet"
  ip -n "$inet" link set lo up
  ip -n "$inet" addr add 192.0.2.1/32 dev lo
  ip netns exec "$inet" sysctl -qw net.ipv4.ip_forward=1
  for h in "${homes[@]}"; do
    local router="$prefix-r$h" home="$prefix-h$h"
    ip netns add "$router"
    ip netns add "$home"
    for ns in "$router" "$home"; do ip -n "$ns" link set lo up; done
    ip netns exec "$router" sysctl -qw net.ipv4.ip_forward=1
    # internet <-> router (wan)
    ip -n "$inet" link add "to-$h" type veth peer name wan netns "$router"
    ip -n "$inet" addr add "${wan_inet[$h]}/30" dev "to-$h"
    ip -n "$inet" link set "to-$h" up
    ip -n "$router" addr add "${wan_router[$h]}/30" dev wan
    ip -n "$router" link set wan up
    ip -n "$router" route add default via "${wan_inet[$h]}"
    # router <-> home (lan)
    ip -n "$router" link add lan type veth peer name lan netns "$home"
    ip -n "$router" addr add "${lan_net[$h]}.1/24" dev lan
    ip -n "$router" link set lan up
    ip -n "$home" addr add "${lan_net[$h]}.2/24" dev lan
    ip -n "$home" link set lan up
    ip -n "$home" route add default via "${lan_net[$h]}.1"
    ip netns exec "$router" nft -f - <<EOF
table ip nat {
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    oifname "wan" ${nat_kind[$h]}
  }
}
table inet filter {
  chain input {
    type filter hook input priority 0; policy accept;
    iifname "wan" ct state new drop
  }
  chain forward_chain {
    type filter hook forward priority 0; policy accept;
    iifname "wan" ct state new drop
  }
}
EOF
  done
}

case "${1:-}" in
  up) [ -n "${2:-}" ] || { echo "usage: $0 up PREFIX" >&2; exit 2; }
      # A half-built network is removed again.
      trap 'down "$2"' ERR
      up "$2" ;;
  down) [ -n "${2:-}" ] || { echo "usage: $0 down PREFIX" >&2; exit 2; }
        down "$2" ;;
  check)
    if [ "$(id -u)" -ne 0 ]; then echo "not root (network namespaces need root)"; exit 1; fi
    need_tools || exit 1
    probe="p2pnat-probe-$$"
    if ! err=$(ip netns add "$probe" 2>&1); then echo "cannot create a network namespace: $err"; exit 1; fi
    problem=""
    if ! err=$(ip netns exec "$probe" true 2>&1); then
      problem="cannot run a program in a network namespace (ip netns exec): $err"
    elif ! err=$(ip netns exec "$probe" nft add table ip probe 2>&1); then
      problem="nftables does not work in a network namespace: $err"
    fi
    ip netns del "$probe" 2>/dev/null || true
    [ -z "$problem" ] || { echo "$problem"; exit 1; }
    ;;
  *) echo "usage: $0 up PREFIX | down PREFIX | check" >&2; exit 2 ;;
esac
