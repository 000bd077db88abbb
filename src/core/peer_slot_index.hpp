#pragma once
// A compact map from peer id to a 32-bit slot number: one open-addressing
// table of 8-byte entries (linear probing, backward-shift deletion, no
// tombstones). A node-based std::unordered_map costs ~40 bytes per entry;
// every peer keeps one of these per known peer, so at 10,000 peers that is
// the difference between megabytes and gigabytes in mesh-sim.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "peer_id.hpp"

namespace p2pmesh {

class PeerSlotIndex {
 public:
  static constexpr std::uint32_t kNotFound = 0xFFFF'FFFFu;

  // The slot of `peer`, or kNotFound (always for kNoPeer).
  std::uint32_t find(PeerId peer) const;
  // Adds peer -> slot; false (and nothing changes) if the peer is already
  // there or is kNoPeer.
  bool insert(PeerId peer, std::uint32_t slot);
  // False if the peer was not there.
  bool erase(PeerId peer);

  std::size_t size() const { return size_; }
  void reserve(std::size_t peers);
  void clear();

 private:
  struct Entry {
    PeerId peer = kNoPeer;  // kNoPeer marks an empty entry
    std::uint32_t slot = 0;
  };

  std::size_t home_of(PeerId peer) const;
  void rehash(std::size_t capacity);

  std::vector<Entry> entries_;  // size is zero or a power of two
  std::size_t size_ = 0;
};

}  // namespace p2pmesh
