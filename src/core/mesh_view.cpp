#include "mesh_view.hpp"

#include <algorithm>
#include <utility>

namespace p2pmesh {

std::uint32_t MeshView::slot_of(PeerId peer) const {
  const auto it = index_.find(peer);
  return it == index_.end() ? kNoSlot : it->second;
}

std::uint32_t MeshView::slot_or_add(PeerId peer) {
  const auto it = index_.find(peer);
  if (it != index_.end()) return it->second;
  std::uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  slots_[slot].peer = peer;
  index_.emplace(peer, slot);
  return slot;
}

std::ptrdiff_t MeshView::find_link(std::uint32_t from, std::uint32_t to) const {
  const auto& list = slots_[from].neighbour_slots;
  const auto it = std::find(list.begin(), list.end(), to);
  return it == list.end() ? -1 : it - list.begin();
}

void MeshView::erase_at(std::uint32_t slot, std::size_t position) {
  auto& s = slots_[slot];
  s.neighbours[position] = s.neighbours.back();
  s.neighbours.pop_back();
  s.neighbour_slots[position] = s.neighbour_slots.back();
  s.neighbour_slots.pop_back();
}

bool MeshView::add_peer(PeerId peer) {
  if (peer == kNoPeer || index_.count(peer) != 0) return false;
  slot_or_add(peer);
  return true;
}

bool MeshView::remove_peer(PeerId peer) {
  const auto it = index_.find(peer);
  if (it == index_.end()) return false;
  const std::uint32_t slot = it->second;
  index_.erase(it);
  Slot& s = slots_[slot];
  for (const std::uint32_t other : s.neighbour_slots) {
    const auto position = find_link(other, slot);
    if (position >= 0) erase_at(other, static_cast<std::size_t>(position));
  }
  link_count_ -= s.neighbour_slots.size();
  // Release the memory: a view that shrinks must not keep its peak footprint.
  std::vector<Neighbour>().swap(s.neighbours);
  std::vector<std::uint32_t>().swap(s.neighbour_slots);
  s.peer = kNoPeer;
  free_slots_.push_back(slot);
  return true;
}

bool MeshView::add_link(PeerId a, PeerId b, std::uint32_t weight_us) {
  if (a == b || a == kNoPeer || b == kNoPeer) return false;
  const std::uint32_t sa = slot_or_add(a);
  const std::uint32_t sb = slot_or_add(b);
  // Search the shorter list.
  const bool a_shorter = slots_[sa].neighbour_slots.size() <= slots_[sb].neighbour_slots.size();
  if ((a_shorter ? find_link(sa, sb) : find_link(sb, sa)) >= 0) return false;
  slots_[sa].neighbours.push_back({b, weight_us});
  slots_[sa].neighbour_slots.push_back(sb);
  slots_[sb].neighbours.push_back({a, weight_us});
  slots_[sb].neighbour_slots.push_back(sa);
  ++link_count_;
  return true;
}

bool MeshView::remove_link(PeerId a, PeerId b) {
  const std::uint32_t sa = slot_of(a);
  const std::uint32_t sb = slot_of(b);
  if (sa == kNoSlot || sb == kNoSlot || sa == sb) return false;
  const auto pa = find_link(sa, sb);
  if (pa < 0) return false;
  const auto pb = find_link(sb, sa);
  erase_at(sa, static_cast<std::size_t>(pa));
  if (pb >= 0) erase_at(sb, static_cast<std::size_t>(pb));
  --link_count_;
  return true;
}

bool MeshView::set_weight(PeerId a, PeerId b, std::uint32_t weight_us) {
  const std::uint32_t sa = slot_of(a);
  const std::uint32_t sb = slot_of(b);
  if (sa == kNoSlot || sb == kNoSlot || sa == sb) return false;
  const auto pa = find_link(sa, sb);
  if (pa < 0) return false;
  const auto pb = find_link(sb, sa);
  slots_[sa].neighbours[static_cast<std::size_t>(pa)].weight_us = weight_us;
  if (pb >= 0) slots_[sb].neighbours[static_cast<std::size_t>(pb)].weight_us = weight_us;
  return true;
}

bool MeshView::has_peer(PeerId peer) const { return index_.count(peer) != 0; }

bool MeshView::has_link(PeerId a, PeerId b) const {
  const std::uint32_t sa = slot_of(a);
  const std::uint32_t sb = slot_of(b);
  if (sa == kNoSlot || sb == kNoSlot || sa == sb) return false;
  const bool a_shorter = slots_[sa].neighbour_slots.size() <= slots_[sb].neighbour_slots.size();
  return (a_shorter ? find_link(sa, sb) : find_link(sb, sa)) >= 0;
}

const std::vector<Neighbour>& MeshView::neighbours(PeerId peer) const {
  static const std::vector<Neighbour> kNone;
  const std::uint32_t slot = slot_of(peer);
  return slot == kNoSlot ? kNone : slots_[slot].neighbours;
}

std::vector<PeerId> MeshView::peers() const {
  std::vector<PeerId> out;
  out.reserve(index_.size());
  for (const Slot& s : slots_) {
    if (s.peer != kNoPeer) out.push_back(s.peer);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void MeshView::reserve(std::size_t peers) {
  index_.reserve(peers);
  slots_.reserve(peers);
}

void MeshView::clear() {
  index_.clear();
  slots_.clear();
  free_slots_.clear();
  link_count_ = 0;
}

}  // namespace p2pmesh
