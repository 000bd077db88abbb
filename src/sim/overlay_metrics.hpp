#pragma once
// Shape of the overlay (the graph of open links): is it connected, how many
// hops across, degrees.

#include <cstddef>
#include <map>
#include <set>

#include "peer_id.hpp"

namespace p2pmesh::sim {

using Overlay = std::map<PeerId, std::set<PeerId>>;

struct OverlayShape {
  std::size_t peers = 0;
  std::size_t links = 0;
  std::size_t components = 0;
  std::size_t hop_diameter = 0;  // longest shortest path within a component
  std::size_t min_degree = 0;
  std::size_t max_degree = 0;
};

// Exact diameter by BFS from every peer: O(peers * links), fine to ~10k.
OverlayShape measure_overlay(const Overlay& overlay);

}  // namespace p2pmesh::sim
