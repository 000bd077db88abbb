#pragma once
// A peer's view of the whole mesh: peers (any uint32 id) and undirected links
// with an optional weight (link latency in microseconds, 0 = unknown).
// Memory is O(peers + links): adjacency lists, no matrix.
//
// Internally every peer lives in a dense "slot" (an index into a flat vector);
// graph algorithms (the broadcast tree) walk slots and never hash in their
// inner loop. A removed peer's slot is freed and reused by the next new peer,
// so slot_count() stays at most the largest number of peers held at once.

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
  // Slot index of no peer.
  static constexpr std::uint32_t kNoSlot = 0xFFFF'FFFFu;

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
  std::size_t peer_count() const { return index_.size(); }
  std::size_t link_count() const { return link_count_; }

  // Neighbours of a peer (empty for an unknown peer), in no particular order.
  const std::vector<Neighbour>& neighbours(PeerId peer) const;
  // All peers, sorted by id.
  std::vector<PeerId> peers() const;

  // Pre-allocates room for `peers` peers (the index and the slot table).
  void reserve(std::size_t peers);
  // Removes every peer and link.
  void clear();

  // --- Dense slots, for graph algorithms -----------------------------------
  // Slots are in [0, slot_count()); a free slot has peer_at() == kNoPeer and
  // no neighbours. Slot numbers depend on the order of insertions/removals:
  // never let a result depend on them, only on peer ids.
  std::size_t slot_count() const { return slots_.size(); }
  // kNoSlot for an unknown peer (or kNoPeer).
  std::uint32_t slot_of(PeerId peer) const;
  PeerId peer_at(std::uint32_t slot) const { return slots_[slot].peer; }
  const std::vector<Neighbour>& neighbours_at(std::uint32_t slot) const {
    return slots_[slot].neighbours;
  }
  // Slots of neighbours_at(slot), same order (parallel vector).
  const std::vector<std::uint32_t>& neighbour_slots_at(std::uint32_t slot) const {
    return slots_[slot].neighbour_slots;
  }

 private:
  struct Slot {
    PeerId peer = kNoPeer;
    std::vector<Neighbour> neighbours;
    std::vector<std::uint32_t> neighbour_slots;  // parallel to neighbours
  };

  std::uint32_t slot_or_add(PeerId peer);
  // Position of `to` in from's lists, or -1.
  std::ptrdiff_t find_link(std::uint32_t from, std::uint32_t to) const;
  void erase_at(std::uint32_t slot, std::size_t position);

  std::unordered_map<PeerId, std::uint32_t> index_;  // peer -> slot
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::size_t link_count_ = 0;
};

}  // namespace p2pmesh
