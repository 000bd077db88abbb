#pragma once
// Warming what handling a peer's mesh update reads first. A simulator hands
// one update to thousands of nodes in a row, and each node's tables are cold
// then: every lookup waits on memory, one node after the other. Taking these
// steps for the next few nodes while the current one works lets their
// memory waits overlap. Each step reads what the step before loaded, so they
// run in order, a node or so apart. They only read, and change nothing.
//
// A step loads for real: prefetch instructions (__builtin_prefetch) changed
// nothing in mesh-sim on these machines, while loads cut its delivery time
// by a third (docs/membership.md, "Warming the next receivers").

#include <cstdint>

namespace p2pmesh {

enum class WarmStep : std::uint8_t {
  tables,  // the node's table headers (where its tables are)
  index,   // the peer's entry in the id index
  slot,    // the peer's per-slot records (member record, list head)
  links,   // the peer's links
};

// Loads the cache line at `address` (a valid address inside an object).
inline void warm(const void* address) { (void)*static_cast<const volatile char*>(address); }

}  // namespace p2pmesh
