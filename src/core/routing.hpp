#pragma once
// Source routing of broadcast Packets along a BroadcastTree (WIRE.md §3).
// A receiver delivers the payload and forwards the packet to every v of an
// edge (u, v) with u == itself. Optionally the sender prunes the edges it sends
// to each child to: the path from the source to that child + the child's
// subtree. A reference peer forwards what it receives unchanged, and still
// relays correctly, because it only looks at edges whose u is itself.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "broadcast_tree.hpp"
#include "peer_id.hpp"
#include "wire.hpp"

namespace p2pmesh {

struct Hop {
  PeerId next = kNoPeer;
  wire::Packet packet;  // what to send to `next`
};

// Packets a source sends to its tree children. Without pruning every child
// gets the full tree; with pruning each gets its path + subtree.
std::vector<Hop> plan_broadcast(const BroadcastTree& tree, std::string payload,
                                std::uint64_t seq, bool prune);

enum class RouteError : std::uint8_t {
  none,
  too_many_edges,    // more edges than the limit
  repeated_target,   // some v appears twice (or is the source)
  not_rooted,        // an edge's u is not reachable from the source along edges
  self_loop,         // u == v
  no_source,         // source is kNoPeer
};
const char* to_string(RouteError error);

// Checks a received packet's route: the edges must form a tree rooted at the
// packet's source. Linear time; never loops on hostile input (cycles show as
// not_rooted or repeated_target).
RouteError validate_route(const wire::Packet& packet, std::size_t max_edges);

// Next hops for a validated packet received by `self`. With pruning each child
// gets its path + subtree (taken from the received edges), otherwise the
// packet unchanged.
std::vector<Hop> plan_relay(const wire::Packet& packet, PeerId self, bool prune);

}  // namespace p2pmesh
