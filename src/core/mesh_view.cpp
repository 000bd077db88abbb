#include "mesh_view.hpp"

#include <algorithm>

#include "gentle_growth.hpp"

namespace p2pmesh {

std::uint32_t MeshView::slot_or_add(PeerId peer) {
  const std::uint32_t found = index_.find(peer);
  if (found != kNoSlot) return found;
  std::uint32_t slot;
  if (room() == 0) return kNoSlot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(peer_of_slot_.size());
    reserve_gently(peer_of_slot_, peer_of_slot_.size() + 1);
    peer_of_slot_.push_back(kNoPeer);
    links_.ensure(peer_of_slot_.size());
  }
  peer_of_slot_[slot] = peer;
  index_.insert(peer, slot);
  return slot;
}

std::ptrdiff_t MeshView::find_link(std::uint32_t from, std::uint32_t to) const {
  const std::span<const SlotLink> list = links_.at(from);
  const auto it =
      std::find_if(list.begin(), list.end(), [to](const SlotLink& l) { return l.slot() == to; });
  return it == list.end() ? -1 : it - list.begin();
}

bool MeshView::add_peer(PeerId peer) {
  if (peer == kNoPeer || has_peer(peer)) return false;
  return slot_or_add(peer) != kNoSlot;
}

bool MeshView::remove_peer(PeerId peer) {
  const std::uint32_t slot = index_.find(peer);
  if (slot == kNoSlot) return false;
  index_.erase(peer);
  for (const SlotLink& link : links_.at(slot)) {
    const auto position = find_link(link.slot(), slot);
    if (position >= 0) links_.swap_erase(link.slot(), static_cast<std::size_t>(position));
  }
  link_count_ -= links_.at(slot).size();
  links_.clear(slot);
  peer_of_slot_[slot] = kNoPeer;
  free_slots_.push_back(slot);
  return true;
}

bool MeshView::add_link(PeerId a, PeerId b, std::uint32_t weight_us) {
  if (a == b || a == kNoPeer || b == kNoPeer) return false;
  if (room() < 2 && std::size_t{!has_peer(a)} + std::size_t{!has_peer(b)} > room()) {
    return false;  // full: both endpoints fit, or neither is added
  }
  const std::uint32_t sa = slot_or_add(a);
  const std::uint32_t sb = slot_or_add(b);
  // Search the shorter list.
  const bool a_shorter = links_.at(sa).size() <= links_.at(sb).size();
  if ((a_shorter ? find_link(sa, sb) : find_link(sb, sa)) >= 0) return false;
  links_.push_back(sa, SlotLink(sb, weight_us));
  links_.push_back(sb, SlotLink(sa, weight_us));
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
  links_.swap_erase(sa, static_cast<std::size_t>(pa));
  if (pb >= 0) links_.swap_erase(sb, static_cast<std::size_t>(pb));
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
  SlotLink& at_a = links_.at(sa)[static_cast<std::size_t>(pa)];
  const std::uint32_t before = at_a.weight_us();
  at_a.set_weight_us(weight_us);
  if (at_a.weight_us() == before) return false;  // also when both saturate
  if (pb >= 0) links_.at(sb)[static_cast<std::size_t>(pb)].set_weight_us(weight_us);
  return true;
}

void MeshView::clear_tags(std::uint32_t slot) {
  for (SlotLink& link : links_.at(slot)) {
    link.set_tag(0);
    if (SlotLink* far = end_at(link.slot(), slot)) far->set_tag(0);
  }
}

std::uint32_t MeshView::weight(PeerId a, PeerId b) const {
  const std::uint32_t sa = slot_of(a);
  const std::uint32_t sb = slot_of(b);
  if (sa == kNoSlot || sb == kNoSlot || sa == sb) return 0;
  const auto pa = find_link(sa, sb);
  return pa < 0 ? 0 : links_.at(sa)[static_cast<std::size_t>(pa)].weight_us();
}

bool MeshView::has_link(PeerId a, PeerId b) const {
  const std::uint32_t sa = slot_of(a);
  const std::uint32_t sb = slot_of(b);
  if (sa == kNoSlot || sb == kNoSlot || sa == sb) return false;
  const bool a_shorter = links_.at(sa).size() <= links_.at(sb).size();
  return (a_shorter ? find_link(sa, sb) : find_link(sb, sa)) >= 0;
}

NeighbourList MeshView::neighbours(PeerId peer) const {
  const std::uint32_t slot = slot_of(peer);
  return slot == kNoSlot ? NeighbourList{} : neighbours_at(slot);
}

std::vector<PeerId> MeshView::peers() const {
  std::vector<PeerId> out;
  out.reserve(index_.size());
  for (const PeerId peer : peer_of_slot_) {
    if (peer != kNoPeer) out.push_back(peer);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void MeshView::reserve(std::size_t peers) {
  index_.reserve(peers);
  peer_of_slot_.reserve(peers);
}

void MeshView::clear() {
  index_.clear();
  std::vector<PeerId>().swap(peer_of_slot_);
  links_.clear_all();
  std::vector<std::uint32_t>().swap(free_slots_);
  link_count_ = 0;
}

}  // namespace p2pmesh
