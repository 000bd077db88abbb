#pragma once
// A peer's view of the whole mesh: peers (any uint32 id) and undirected links
// with an optional weight (link latency in microseconds, 0 = unknown).
// Memory is O(peers + links): adjacency lists, no matrix.

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "peer_id.hpp"

namespace p2pmesh {

struct Neighbour {
  PeerId peer = kNoPeer;
  std::uint32_t weight_us = 0;  // 0 = unknown latency
};

class MeshView {
 public:
  // Adds a peer with no links; false if already present or kNoPeer.
  bool add_peer(PeerId peer);
  // Removes a peer and all its links; false if unknown.
  bool remove_peer(PeerId peer);
  // Adds an undirected link (adding unknown endpoints); false if it already
  // existed, a == b, or either is kNoPeer. An existing link keeps its weight.
  bool add_link(PeerId a, PeerId b, std::uint32_t weight_us = 0);
  bool remove_link(PeerId a, PeerId b);
  // Sets the weight of an existing link; false if there is no such link.
  bool set_weight(PeerId a, PeerId b, std::uint32_t weight_us);

  bool has_peer(PeerId peer) const;
  bool has_link(PeerId a, PeerId b) const;
  std::size_t peer_count() const { return adjacency_.size(); }
  std::size_t link_count() const { return link_count_; }

  // Neighbours of a peer (empty for an unknown peer), in no particular order.
  const std::vector<Neighbour>& neighbours(PeerId peer) const;
  // All peers, sorted by id.
  std::vector<PeerId> peers() const;

 private:
  std::unordered_map<PeerId, std::vector<Neighbour>> adjacency_;
  std::size_t link_count_ = 0;
};

}  // namespace p2pmesh
