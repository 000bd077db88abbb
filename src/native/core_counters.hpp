#pragma once
// The core's counters (MeshCounters) into the public snapshot's counters.
// Internal to libp2pmesh; declared here for the tests. Every MeshCounters field
// has a field of the same name in PeerSnapshot::Counters (tests/native check it).

#include "mesh_node.hpp"
#include "p2pmesh/peer.hpp"

namespace p2pmesh::native {

// Sets the core part of `to`; its driver counters are left as they are.
void copy_core_counters(const MeshCounters& from, PeerSnapshot::Counters& to);

}  // namespace p2pmesh::native
