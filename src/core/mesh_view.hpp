#pragma once
// A peer's view of the whole mesh: peers (any uint32 id) and undirected links
// with an optional weight (link latency in microseconds, 0 = unknown).
// Memory is O(peers + links) and small per peer: every peer keeps a view of
// the whole mesh, so at 10,000 peers (mesh-sim) the bytes per known peer
// decide whether it fits in a machine. One flat index (id -> slot), one id
// per slot, and each link stored once per end as 8 bytes in a shared pool
// (the far end, the weight, and a tag for the owner: Membership keeps the
// end's claim of the link there instead of in a list of its own).
//
// Internally every peer lives in a dense "slot" (an index into flat tables);
// graph algorithms (the broadcast tree) walk slots and never hash in their
// inner loop. A removed peer's slot is freed and reused by the next new peer,
// so slot_count() stays at most the largest number of peers held at once.

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>
#include <stdexcept>
#include <vector>

#include "peer_id.hpp"
#include "peer_slot_index.hpp"
#include "pooled_lists.hpp"
#include "warm.hpp"

namespace p2pmesh {

struct Neighbour {
  PeerId peer = kNoPeer;
  std::uint32_t weight_us = 0;  // 0 = unknown latency
};

// A link as the view stores it at one end, in 8 bytes: the far end's slot,
// the weight, and a tag the view's owner keeps at this end (Membership: what
// this end's peer claims of the link; graph algorithms never read it). Every
// peer holds every link of the group twice, so at 10,000 peers these bytes
// are most of a view. Weights above kMaxWeightUs (1.05 s) are kept as
// kMaxWeightUs: a tree treats such links alike.
class SlotLink {
 public:
  static constexpr unsigned kSlotBits = 23;
  static constexpr unsigned kWeightBits = 20;
  static constexpr unsigned kTagBits = 64 - kSlotBits - kWeightBits;  // 21
  static constexpr std::uint32_t kMaxSlots = 1u << kSlotBits;
  static constexpr std::uint32_t kMaxWeightUs = (1u << kWeightBits) - 1;
  static constexpr std::uint32_t kMaxTag = (1u << kTagBits) - 1;

  SlotLink() = default;
  SlotLink(std::uint32_t slot, std::uint32_t weight_us) : bits_(slot) { set_weight_us(weight_us); }

  std::uint32_t slot() const { return static_cast<std::uint32_t>(bits_ & kSlotMask); }
  std::uint32_t weight_us() const {
    return static_cast<std::uint32_t>((bits_ >> kSlotBits) & kMaxWeightUs);
  }
  std::uint32_t tag() const { return static_cast<std::uint32_t>(bits_ >> (kSlotBits + kWeightBits)); }
  // Saturates at kMaxWeightUs.
  void set_weight_us(std::uint32_t weight_us) {
    const std::uint64_t w = weight_us < kMaxWeightUs ? weight_us : kMaxWeightUs;
    bits_ = (bits_ & ~(std::uint64_t{kMaxWeightUs} << kSlotBits)) | (w << kSlotBits);
  }
  // Keeps the low kTagBits bits.
  void set_tag(std::uint32_t tag) {
    bits_ = (bits_ & kBelowTag) | (std::uint64_t{tag & kMaxTag} << (kSlotBits + kWeightBits));
  }

 private:
  static constexpr std::uint64_t kSlotMask = (std::uint64_t{1} << kSlotBits) - 1;
  static constexpr std::uint64_t kBelowTag = (std::uint64_t{1} << (kSlotBits + kWeightBits)) - 1;
  std::uint64_t bits_ = 0;
};
static_assert(sizeof(SlotLink) == 8);

// The neighbours of one peer, read as Neighbour values. Valid until the view
// changes (like a std::span into it).
class NeighbourList {
 public:
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = Neighbour;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = Neighbour;

    iterator() = default;
    iterator(const SlotLink* at, const PeerId* peer_of_slot) : at_(at), peer_of_slot_(peer_of_slot) {}
    Neighbour operator*() const { return {peer_of_slot_[at_->slot()], at_->weight_us()}; }
    iterator& operator++() {
      ++at_;
      return *this;
    }
    iterator operator++(int) {
      iterator before = *this;
      ++at_;
      return before;
    }
    bool operator==(const iterator& other) const { return at_ == other.at_; }

   private:
    const SlotLink* at_ = nullptr;
    const PeerId* peer_of_slot_ = nullptr;
  };

  NeighbourList() = default;
  NeighbourList(std::span<const SlotLink> links, const PeerId* peer_of_slot)
      : links_(links), peer_of_slot_(peer_of_slot) {}

  std::size_t size() const { return links_.size(); }
  bool empty() const { return links_.empty(); }
  Neighbour operator[](std::size_t i) const {
    return {peer_of_slot_[links_[i].slot()], links_[i].weight_us()};
  }
  Neighbour at(std::size_t i) const {
    if (i >= size()) throw std::out_of_range("NeighbourList::at");
    return (*this)[i];
  }
  iterator begin() const { return {links_.data(), peer_of_slot_}; }
  iterator end() const { return {links_.data() + links_.size(), peer_of_slot_}; }

 private:
  std::span<const SlotLink> links_;
  const PeerId* peer_of_slot_ = nullptr;
};

class MeshView {
 public:
  // Slot index of no peer.
  static constexpr std::uint32_t kNoSlot = PeerSlotIndex::kNotFound;
  // The most peers a view holds (what a link's end can address); a test may
  // ask for fewer.
  static constexpr std::size_t kMaxPeers = SlotLink::kMaxSlots;

  explicit MeshView(std::size_t max_peers = kMaxPeers)
      : max_peers_(max_peers < kMaxPeers ? max_peers : kMaxPeers) {}

  // Adds a peer with no links; false if already present, kNoPeer, or the
  // view is full (max_peers).
  bool add_peer(PeerId peer);
  // Removes a peer and all its links; false if unknown.
  bool remove_peer(PeerId peer);
  // Adds an undirected link (adding unknown endpoints); false if it already
  // existed, a == b, either is kNoPeer, or an endpoint does not fit (the
  // view is full). An existing link keeps its weight.
  bool add_link(PeerId a, PeerId b, std::uint32_t weight_us = 0);
  bool remove_link(PeerId a, PeerId b);
  // Sets the weight of an existing link; false if there is no such link or
  // the weight is unchanged.
  bool set_weight(PeerId a, PeerId b, std::uint32_t weight_us);
  // The weight of a link a -> b (0: unknown, or no such link).
  std::uint32_t weight(PeerId a, PeerId b) const;

  bool has_peer(PeerId peer) const { return index_.find(peer) != kNoSlot; }
  bool has_link(PeerId a, PeerId b) const;
  std::size_t peer_count() const { return index_.size(); }
  std::size_t link_count() const { return link_count_; }

  // Neighbours of a peer (empty for an unknown peer), in no particular order.
  NeighbourList neighbours(PeerId peer) const;
  // All peers, sorted by id.
  std::vector<PeerId> peers() const;

  // One step of loading ahead what a lookup of `peer` reads (warm.hpp).
  void warm_peer(PeerId peer, WarmStep step) const {
    switch (step) {
      case WarmStep::tables:
        warm(this);
        warm(reinterpret_cast<const char*>(this) + 64);
        warm(reinterpret_cast<const char*>(this) + sizeof(MeshView) - 1);
        break;
      case WarmStep::index: index_.warm_entry(peer); break;
      case WarmStep::slot:
        if (const std::uint32_t slot = slot_of(peer); slot != kNoSlot) links_.warm_head(slot);
        break;
      case WarmStep::links:
        if (const std::uint32_t slot = slot_of(peer); slot != kNoSlot) links_.warm_elements(slot);
        break;
    }
  }

  // Pre-allocates room for `peers` peers (the index and the slot table).
  void reserve(std::size_t peers);
  // Removes every peer and link.
  void clear();

  // --- Dense slots, for graph algorithms -----------------------------------
  // Slots are in [0, slot_count()); a free slot has peer_at() == kNoPeer and
  // no links. Slot numbers depend on the order of insertions/removals:
  // never let a result depend on them, only on peer ids.
  std::size_t slot_count() const { return peer_of_slot_.size(); }
  // kNoSlot for an unknown peer (or kNoPeer).
  std::uint32_t slot_of(PeerId peer) const { return index_.find(peer); }
  PeerId peer_at(std::uint32_t slot) const { return peer_of_slot_[slot]; }
  NeighbourList neighbours_at(std::uint32_t slot) const {
    return {links_.at(slot), peer_of_slot_.data()};
  }
  // The links of a slot as stored: far-end slots and weights, in the same
  // order as neighbours_at(slot).
  std::span<const SlotLink> links_at(std::uint32_t slot) const { return links_.at(slot); }
  // `from`'s end of the link from-to (its tag is 0 on a new link), or null
  // when there is no such link. Valid until the view changes; set only its
  // tag through it (its slot and weight are the view's).
  SlotLink* end_at(std::uint32_t from, std::uint32_t to) {
    const std::ptrdiff_t position = find_link(from, to);
    return position < 0 ? nullptr : &links_.at(from)[static_cast<std::size_t>(position)];
  }
  // The tag at `from`'s end of the link from-to; 0 when there is no such link.
  std::uint32_t tag(std::uint32_t from, std::uint32_t to) const {
    const std::ptrdiff_t position = find_link(from, to);
    return position < 0 ? 0 : links_.at(from)[static_cast<std::size_t>(position)].tag();
  }
  // Sets the tags at both ends of every link of `slot` to 0.
  void clear_tags(std::uint32_t slot);

 private:
  // kNoSlot when the view is full.
  std::uint32_t slot_or_add(PeerId peer);
  // Peers that can still be added.
  std::size_t room() const { return free_slots_.size() + (max_peers_ - peer_of_slot_.size()); }
  // Position of `to` in from's links, or -1.
  std::ptrdiff_t find_link(std::uint32_t from, std::uint32_t to) const;

  PeerSlotIndex index_;                // peer -> slot
  std::vector<PeerId> peer_of_slot_;   // slot -> peer (kNoPeer when free)
  PooledLists<SlotLink> links_;        // one list per slot
  std::vector<std::uint32_t> free_slots_;
  std::size_t link_count_ = 0;
  std::size_t max_peers_;
};

}  // namespace p2pmesh
