#pragma once
// Source routing of broadcast Packets along a BroadcastTree (WIRE.md §3).
// A receiver delivers the payload and forwards the packet to every v of an
// edge (u, v) with u == itself. Optionally the sender prunes the edges it sends
// to each child to: the path from the source to that child + the child's
// subtree. A reference peer forwards what it receives unchanged, and still
// relays correctly, because it only looks at edges whose u is itself.

#include <cstddef>
#include <cstdint>
#include <functional>
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
  no_target,         // an edge's v is kNoPeer (added after the first five)
};
const char* to_string(RouteError error);

// Checks a received packet's route: the edges must form a tree rooted at the
// packet's source. Linear time (radix sort + merge, no hashing, so no
// adversarial collisions); never loops on hostile input (cycles show as
// not_rooted or repeated_target). An empty edge list is valid (a packet that
// came through the server fallback). When several problems exist, the first
// of these is reported: no_source, too_many_edges, self_loop / no_target (first
// offending edge), repeated_target, not_rooted.
RouteError validate_route(const wire::Packet& packet, std::size_t max_edges);

// Next hops for a validated packet received by `self`, one per edge (self, v)
// in the order of the edges. With pruning each child gets the path from the
// source to it + its subtree (edges kept in their received order), otherwise
// the packet unchanged. No hops if self is not the u of any edge. On a packet
// that did not pass validate_route the result is unspecified but memory-safe
// and linear-time.
// `wanted`, when given, is asked once per child in edge order; a child it
// refuses gets no hop (and no copy of the payload: a hostile route naming
// thousands of made-up children costs nothing).
using HopFilter = std::function<bool(PeerId next)>;
std::vector<Hop> plan_relay(const wire::Packet& packet, PeerId self, bool prune,
                            const HopFilter& wanted = {});

// Gap repair: the route of a copy of `held` (a packet we hold, its route a
// validated tree) that we, `self`, send to `puller`, which lost it: our path
// from the source, the edge self -> puller, and puller's subtree when our
// route holds it (the source's holds the whole tree), so the puller relays
// the copy on to the peers below it, which lost it too. Empty when no valid
// tree can say so (the puller is the source, or above us in our path).
std::vector<wire::Edge> graft_route(const wire::Packet& held, PeerId self, PeerId puller);

}  // namespace p2pmesh
