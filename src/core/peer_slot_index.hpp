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
#include "warm.hpp"

namespace p2pmesh {

class PeerSlotIndex {
 public:
  static constexpr std::uint32_t kNotFound = 0xFFFF'FFFFu;

  // The slot of `peer`, or kNotFound (always for kNoPeer). Inline: every
  // mesh update a peer hears looks up a few ids.
  std::uint32_t find(PeerId peer) const {
    if (peer == kNoPeer || entries_.empty()) return kNotFound;
    const std::size_t mask = entries_.size() - 1;
    for (std::size_t i = home_of(peer);; i = (i + 1) & mask) {
      const Entry& entry = entries_[i];
      if (entry.peer == peer) return entry.slot;
      if (entry.peer == kNoPeer) return kNotFound;
    }
  }
  // Loads (warm.hpp) the entry where a lookup of `peer` starts.
  void warm_entry(PeerId peer) const {
    if (!entries_.empty()) warm(&entries_[home_of(peer)]);
  }
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

  std::size_t home_of(PeerId peer) const {
    // Fibonacci hashing: sequential ids (as meshd hands out) spread evenly.
    const std::uint64_t mixed = std::uint64_t{peer} * 0x9E37'79B9'7F4A'7C15ULL;
    return static_cast<std::size_t>(mixed >> 32) & (entries_.size() - 1);
  }
  void rehash(std::size_t capacity);

  std::vector<Entry> entries_;  // size is zero or a power of two
  std::size_t size_ = 0;
};

}  // namespace p2pmesh
