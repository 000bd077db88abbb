#include "peer_slot_index.hpp"

namespace p2pmesh {

namespace {

// Kept at most 3/4 full: probe runs stay short.
bool too_full(std::size_t size, std::size_t capacity) { return size * 4 > capacity * 3; }

}  // namespace

bool PeerSlotIndex::insert(PeerId peer, std::uint32_t slot) {
  if (peer == kNoPeer) return false;
  if (entries_.empty() || too_full(size_ + 1, entries_.size())) {
    rehash(entries_.empty() ? 8 : entries_.size() * 2);
  }
  const std::size_t mask = entries_.size() - 1;
  for (std::size_t i = home_of(peer);; i = (i + 1) & mask) {
    Entry& entry = entries_[i];
    if (entry.peer == peer) return false;
    if (entry.peer == kNoPeer) {
      entry = {peer, slot};
      ++size_;
      return true;
    }
  }
}

bool PeerSlotIndex::erase(PeerId peer) {
  if (peer == kNoPeer || entries_.empty()) return false;
  const std::size_t mask = entries_.size() - 1;
  std::size_t hole = home_of(peer);
  while (entries_[hole].peer != peer) {
    if (entries_[hole].peer == kNoPeer) return false;
    hole = (hole + 1) & mask;
  }
  // Backward shift: pull later entries of the probe run into the hole so
  // lookups never meet a gap before their entry.
  for (std::size_t next = (hole + 1) & mask; entries_[next].peer != kNoPeer;
       next = (next + 1) & mask) {
    const std::size_t home = home_of(entries_[next].peer);
    // Movable when its home is not within (hole, next] cyclically.
    const bool movable = hole <= next ? (home <= hole || home > next) : (home <= hole && home > next);
    if (movable) {
      entries_[hole] = entries_[next];
      hole = next;
    }
  }
  entries_[hole] = Entry{};
  --size_;
  return true;
}

void PeerSlotIndex::reserve(std::size_t peers) {
  std::size_t capacity = entries_.empty() ? 8 : entries_.size();
  while (too_full(peers, capacity)) capacity *= 2;
  if (capacity != entries_.size()) rehash(capacity);
}

void PeerSlotIndex::clear() {
  std::vector<Entry>().swap(entries_);
  size_ = 0;
}

void PeerSlotIndex::rehash(std::size_t capacity) {
  std::vector<Entry> old(capacity);
  old.swap(entries_);
  const std::size_t mask = capacity - 1;
  for (const Entry& entry : old) {
    if (entry.peer == kNoPeer) continue;
    std::size_t i = home_of(entry.peer);
    while (entries_[i].peer != kNoPeer) i = (i + 1) & mask;
    entries_[i] = entry;
  }
}

}  // namespace p2pmesh
