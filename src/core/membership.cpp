#include "membership.hpp"

#include <algorithm>

#include "gentle_growth.hpp"

namespace p2pmesh {

namespace {

// A claim at the claimer's end of a view link: the flag, and the RTT it said
// (kept up to the view's largest weight: the link's weight comes from it).
constexpr std::uint32_t kClaimed = 1u << (SlotLink::kTagBits - 1);
static_assert(kClaimed - 1 >= SlotLink::kMaxWeightUs);
std::uint32_t claim_tag(std::uint32_t rtt_us) {
  return kClaimed | std::min(rtt_us, SlotLink::kMaxWeightUs);
}

}  // namespace

Membership::Membership(PeerId self, std::size_t max_peers) : self_(self), view_(max_peers) {
  view_.add_peer(self);
  cover_view_slots();
}

std::uint32_t Membership::member_slot(PeerId peer) const {
  const std::uint32_t slot = view_.slot_of(peer);
  if (slot == MeshView::kNoSlot || !(member_at_slot_[slot].flags & kMember)) return MeshView::kNoSlot;
  return slot;
}

void Membership::cover_view_slots() {
  const std::size_t slots = view_.slot_count();
  if (member_at_slot_.size() >= slots) return;
  reserve_gently(member_at_slot_, slots);
  member_at_slot_.resize(slots);
}

Membership::Outcome Membership::apply(const wire::MeshUpdate& update, TimeUs now) {
  Outcome outcome;
  const PeerId source = update.source;
  if (source == kNoPeer || source == self_) {
    outcome.ignored = true;
    return outcome;
  }
  if (update.left) {
    if (remove_member(source)) outcome.left = source;
    else outcome.ignored = true;
    return outcome;
  }
  if (update.kind == wire::MeshUpdate::Kind::status) {
    const std::uint32_t slot = member_slot(source);
    if (slot != MeshView::kNoSlot && (member_at_slot_[slot].flags & kHasStatusId) &&
        update.status.id <= member_at_slot_[slot].last_status_id) {
      // Older or equal status id (WIRE.md §3): nothing new about its links,
      // but the member is alive (reference peers re-publish the same id).
      if (member_at_slot_[slot].heard_before(now)) member_at_slot_[slot].set_heard(now);
      outcome.ignored = true;
      return outcome;
    }
  }
  if (add_member(source, now)) outcome.joined = source;
  const std::uint32_t slot = member_slot(source);
  if (slot == MeshView::kNoSlot) {  // the view is full: it stays unknown
    outcome.ignored = true;
    return outcome;
  }
  Member& member = member_at_slot_[slot];
  member.set_heard(now);

  switch (update.kind) {
    case wire::MeshUpdate::Kind::status: {
      if (update.status.next_seq != 0) {
        outcome.first_next_seq = !(member.flags & kSaidNextSeq);
        member.flags |= kSaidNextSeq;
      }
      member.last_status_id = update.status.id;
      member.flags |= kHasStatusId;
      const auto version = static_cast<std::uint16_t>(std::min(update.status.version, kMaxVersion));
      const bool version_changed = member.version != version;
      if (version_changed) {
        count_version(member.version, -1);
        count_version(version, +1);
      }
      member.version = version;
      new_claims_.clear();
      for (std::size_t i = 0; i < update.status.connected_to.size(); ++i) {
        const PeerId peer = update.status.connected_to[i];
        const std::uint32_t rtt =
            i < update.status.rtt_us.size() ? update.status.rtt_us[i] : 0;
        if (peer == kNoPeer || peer == source) continue;
        if (std::any_of(new_claims_.begin(), new_claims_.end(),
                        [peer](const Claim& c) { return c.peer == peer; })) {
          continue;  // a repeated entry counts once
        }
        new_claims_.push_back({peer, rtt});
      }
      set_claims(source, slot, new_claims_);
      if (version_changed) {
        // Its claims' credibility (refresh_pair) depends on its version.
        claims_of(slot, old_claims_);
        for (const Claim& claim : old_claims_) refresh_pair(source, claim.peer);
      }
      break;
    }
    case wire::MeshUpdate::Kind::connected_to:
      if (update.peer != kNoPeer && update.peer != source) add_claim(source, slot, update.peer, 0);
      break;
    case wire::MeshUpdate::Kind::disconnected_from: {
      const bool ends_link = member.version >= wire::kVersionLinkDownByOneEnd;
      remove_claim(source, slot, update.peer);
      // The link is down, whatever the other end still claims.
      if (const std::uint32_t other = member_slot(update.peer);
          ends_link && other != MeshView::kNoSlot) {
        remove_claim(update.peer, other, source);
      }
      break;
    }
    case wire::MeshUpdate::Kind::none:
      break;
  }
  return outcome;
}

bool Membership::add_member(PeerId peer, TimeUs now) {
  if (peer == kNoPeer || peer == self_ || is_member(peer)) return false;
  if (view_.add_peer(peer)) ++view_generation_;
  const std::uint32_t slot = view_.slot_of(peer);
  if (slot == MeshView::kNoSlot) return false;  // the view is full
  cover_view_slots();
  member_at_slot_[slot] = Member{};
  member_at_slot_[slot].set_heard(now);
  member_at_slot_[slot].flags = kMember;
  ++member_count_;
  count_version(0, +1);
  // Claims about the newcomer made before we knew it now count.
  if (auto pending = pending_claimers_.find(peer); pending != pending_claimers_.end()) {
    const std::vector<PeerId> claimers = std::move(pending->second);
    pending_claimers_.erase(pending);
    for (const PeerId claimer : claimers) refresh_pair(claimer, peer);
  }
  refresh_pair(self_, peer);
  return true;
}

bool Membership::remove_member(PeerId peer) {
  const std::uint32_t slot = member_slot(peer);
  if (slot == MeshView::kNoSlot) return false;
  for (const Claim& claim : outside_claims(slot)) drop_pending_claim(peer, claim.peer);
  claims_outside_.erase(slot);
  member_at_slot_[slot].flags = 0;
  --member_count_;
  count_version(member_at_slot_[slot].version, -1);
  // Claims others made about it go too: they would only describe dead links.
  // At the view's links: its own claims and its claimers' (their ends);
  // outside the view, those whose claim was not credible (the pending index).
  view_.clear_tags(slot);
  if (auto pending = pending_claimers_.find(peer); pending != pending_claimers_.end()) {
    const std::vector<PeerId> claimers = std::move(pending->second);
    pending_claimers_.erase(pending);
    for (const PeerId claimer_peer : claimers) {
      if (const std::uint32_t claimer = member_slot(claimer_peer); claimer != MeshView::kNoSlot) {
        erase_claim(claimer, peer);
      }
    }
  }
  if (local_links_.count(peer)) {
    // Still linked to us: keep that link, drop the ones only its claims made.
    std::vector<PeerId> others;
    for (const Neighbour& n : view_.neighbours_at(slot)) {
      if (n.peer != self_) others.push_back(n.peer);
    }
    for (const PeerId other : others) refresh_pair(peer, other);
  } else if (view_.remove_peer(peer)) {
    ++view_generation_;
  }
  return true;
}

void Membership::set_local_link(PeerId peer, bool up, std::uint32_t rtt_us) {
  if (peer == kNoPeer || peer == self_) return;
  if (up) local_links_[peer] = rtt_us;
  else local_links_.erase(peer);
  refresh_pair(self_, peer);
  if (!up && !is_member(peer) && view_.remove_peer(peer)) ++view_generation_;
}

std::vector<PeerId> Membership::silent_since(TimeUs cutoff) const {
  std::vector<PeerId> silent;
  for (std::uint32_t slot = 0; slot < member_at_slot_.size(); ++slot) {
    if ((member_at_slot_[slot].flags & kMember) && member_at_slot_[slot].heard_before(cutoff)) {
      silent.push_back(view_.peer_at(slot));
    }
  }
  std::sort(silent.begin(), silent.end());
  return silent;
}

std::vector<PeerId> Membership::members() const {
  std::vector<PeerId> peers;
  peers.reserve(member_count_);
  for (std::uint32_t slot = 0; slot < member_at_slot_.size(); ++slot) {
    if (member_at_slot_[slot].flags & kMember) peers.push_back(view_.peer_at(slot));
  }
  std::sort(peers.begin(), peers.end());
  return peers;
}

void Membership::count_version(std::uint32_t version, int delta) {
  const std::size_t at = std::min<std::size_t>(version, members_by_version_.size() - 1);
  members_by_version_[at] = static_cast<std::size_t>(
      static_cast<std::ptrdiff_t>(members_by_version_[at]) + delta);
}

std::size_t Membership::members_below_version(std::uint32_t version) const {
  const std::size_t end = std::min<std::size_t>(version, members_by_version_.size() - 1);
  std::size_t below = 0;
  for (std::size_t v = 0; v < end; ++v) below += members_by_version_[v];
  return below;
}

std::uint32_t Membership::version_of(PeerId peer) const {
  const std::uint32_t slot = member_slot(peer);
  return slot == MeshView::kNoSlot ? 0 : member_at_slot_[slot].version;
}

void Membership::set_claims(PeerId source, std::uint32_t slot, std::span<const Claim> claims) {
  claims_of(slot, old_claims_);
  const auto names = [](std::span<const Claim> list, PeerId peer) {
    return std::any_of(list.begin(), list.end(), [peer](const Claim& c) { return c.peer == peer; });
  };
  const auto same = [](std::span<const Claim> list, const Claim& claim) {
    return std::any_of(list.begin(), list.end(), [&](const Claim& c) {
      return c.peer == claim.peer && c.rtt_us == claim.rtt_us;
    });
  };
  // Periodic statuses mostly repeat what we know: touch only what changed.
  for (const Claim& claim : old_claims_) {
    if (!names(claims, claim.peer)) erase_claim(slot, claim.peer);
  }
  for (const Claim& claim : claims) {
    if (!same(old_claims_, claim)) put_claim(slot, claim.peer, claim.rtt_us);
  }
  for (const Claim& claim : old_claims_) {
    if (same(claims, claim)) continue;
    if (!names(claims, claim.peer)) drop_pending_claim(source, claim.peer);
    refresh_pair(source, claim.peer);
  }
  for (const Claim& claim : claims) {
    if (same(old_claims_, claim)) continue;
    note_pending_claim(source, claim.peer);
    refresh_pair(source, claim.peer);
  }
}

void Membership::add_claim(PeerId source, std::uint32_t slot, PeerId peer, std::uint32_t rtt_us) {
  // Bounded: a member announcing connected_to 1, 2, 3... must not grow our
  // view (and the cost of each claim) without end. Real peers hold a handful.
  if (claim_count(slot) >= kMaxClaimsPerMember) return;
  if (find_claim(slot, peer, view_.slot_of(peer)).made) return;
  put_claim(slot, peer, rtt_us);
  note_pending_claim(source, peer);
  refresh_pair(source, peer);
}

void Membership::remove_claim(PeerId source, std::uint32_t slot, PeerId peer) {
  if (!erase_claim(slot, peer)) return;
  drop_pending_claim(source, peer);
  refresh_pair(source, peer);
}

Membership::FoundClaim Membership::find_claim(std::uint32_t source_slot, PeerId peer,
                                              std::uint32_t peer_slot) const {
  if (peer_slot != MeshView::kNoSlot) {
    if (const std::uint32_t tag = view_.tag(source_slot, peer_slot); tag & kClaimed) {
      return {true, tag & ~kClaimed};
    }
  }
  if (member_at_slot_[source_slot].flags & kClaimsOutside) {
    for (const Claim& claim : outside_claims(source_slot)) {
      if (claim.peer == peer) return {true, claim.rtt_us};
    }
  }
  return {};
}

void Membership::put_claim(std::uint32_t source_slot, PeerId peer, std::uint32_t rtt_us) {
  if (const std::uint32_t peer_slot = view_.slot_of(peer); peer_slot != MeshView::kNoSlot) {
    if (SlotLink* end = view_.end_at(source_slot, peer_slot)) {
      end->set_tag(claim_tag(rtt_us));
      return;
    }
  }
  Member& member = member_at_slot_[source_slot];
  if (member.flags & kClaimsOutside) {
    for (Claim& claim : claims_outside_[source_slot]) {
      if (claim.peer == peer) {
        claim.rtt_us = rtt_us;
        return;
      }
    }
  }
  claims_outside_[source_slot].push_back({peer, rtt_us});
  member.flags |= kClaimsOutside;
}

bool Membership::erase_claim(std::uint32_t source_slot, PeerId peer) {
  if (const std::uint32_t peer_slot = view_.slot_of(peer); peer_slot != MeshView::kNoSlot) {
    SlotLink* end = view_.end_at(source_slot, peer_slot);
    if (end && (end->tag() & kClaimed)) {
      end->set_tag(0);
      return true;
    }
  }
  Member& member = member_at_slot_[source_slot];
  if (!(member.flags & kClaimsOutside)) return false;
  const auto list = claims_outside_.find(source_slot);
  std::vector<Claim>& claims = list->second;
  const auto it = std::find_if(claims.begin(), claims.end(),
                               [peer](const Claim& c) { return c.peer == peer; });
  if (it == claims.end()) return false;
  claims.erase(it);
  if (claims.empty()) {
    claims_outside_.erase(list);
    member.flags &= static_cast<std::uint8_t>(~kClaimsOutside);
  }
  return true;
}

std::span<const Membership::Claim> Membership::outside_claims(std::uint32_t source_slot) const {
  if (!(member_at_slot_[source_slot].flags & kClaimsOutside)) return {};
  const auto list = claims_outside_.find(source_slot);
  return list == claims_outside_.end() ? std::span<const Claim>{} : std::span<const Claim>(list->second);
}

void Membership::claims_of(std::uint32_t source_slot, std::vector<Claim>& out) const {
  out.clear();
  for (const SlotLink& link : view_.links_at(source_slot)) {
    if (link.tag() & kClaimed) out.push_back({view_.peer_at(link.slot()), link.tag() & ~kClaimed});
  }
  const auto outside = outside_claims(source_slot);
  out.insert(out.end(), outside.begin(), outside.end());
}

std::size_t Membership::claim_count(std::uint32_t source_slot) const {
  std::size_t count = 0;
  for (const SlotLink& link : view_.links_at(source_slot)) count += (link.tag() & kClaimed) ? 1 : 0;
  return count + outside_claims(source_slot).size();
}

void Membership::move_claims_into_link(PeerId a, PeerId b) {
  const auto move_in = [this](PeerId from_peer, PeerId to_peer) {
    const std::uint32_t from = view_.slot_of(from_peer);
    for (const Claim& claim : outside_claims(from)) {  // none for a peer that is no member
      if (claim.peer != to_peer) continue;
      const std::uint32_t rtt_us = claim.rtt_us;
      erase_claim(from, to_peer);  // from outside: the new link's tags are still 0
      view_.end_at(from, view_.slot_of(to_peer))->set_tag(claim_tag(rtt_us));
      return;
    }
  };
  move_in(a, b);
  move_in(b, a);
}

void Membership::move_claims_out_of_link(PeerId a, PeerId b) {
  const std::uint32_t sa = view_.slot_of(a);
  const std::uint32_t sb = view_.slot_of(b);
  if (sa == MeshView::kNoSlot || sb == MeshView::kNoSlot) return;
  const auto move_out = [this](std::uint32_t from, std::uint32_t to, PeerId to_peer) {
    const std::uint32_t tag = view_.tag(from, to);
    if (!(tag & kClaimed)) return;  // only members' ends carry claims
    claims_outside_[from].push_back({to_peer, tag & ~kClaimed});
    member_at_slot_[from].flags |= kClaimsOutside;
  };
  move_out(sa, sb, b);
  move_out(sb, sa, a);
}

void Membership::note_pending_claim(PeerId claimer, PeerId peer) {
  if (peer == self_ || is_member(peer)) return;  // read off the view instead
  index_claim_outside_view(claimer, peer);
}

void Membership::index_claim_outside_view(PeerId claimer, PeerId peer) {
  auto& claimers = pending_claimers_[peer];
  if (std::find(claimers.begin(), claimers.end(), claimer) == claimers.end()) {
    claimers.push_back(claimer);
  }
}

void Membership::drop_pending_claim(PeerId claimer, PeerId peer) {
  auto it = pending_claimers_.find(peer);
  if (it == pending_claimers_.end()) return;
  auto& claimers = it->second;
  claimers.erase(std::remove(claimers.begin(), claimers.end(), claimer), claimers.end());
  if (claimers.empty()) pending_claimers_.erase(it);
}

void Membership::refresh_pair(PeerId a, PeerId b) {
  bool wanted = false;
  std::uint32_t rtt = 0;
  if (a == self_ || b == self_) {
    const PeerId other = a == self_ ? b : a;
    if (auto it = local_links_.find(other); it != local_links_.end()) {
      wanted = true;
      rtt = it->second;
    }
  } else if (const std::uint32_t sa = member_slot(a), sb = member_slot(b);
             sa != MeshView::kNoSlot && sb != MeshView::kNoSlot) {
    const FoundClaim ab = find_claim(sa, b, sb);
    const FoundClaim ba = find_claim(sb, a, sa);
    // A claim is credible when both ends make it, or when its maker speaks
    // our protocol (version >= 1: links announced truthfully, and only the
    // dialler announces a new one). A reference peer keeps claiming a link
    // whose offer went unanswered, or that the other end closed: trees over
    // it would lose every packet sent down it.
    const bool credible_ab = ab.made && (ba.made || member_at_slot_[sa].version >= 1);
    const bool credible_ba = ba.made && (ab.made || member_at_slot_[sb].version >= 1);
    wanted = credible_ab || credible_ba;
    if (ab.made && ab.rtt_us) rtt = ab.rtt_us;
    if (ba.made && ba.rtt_us) rtt = rtt ? std::min(rtt, ba.rtt_us) : ba.rtt_us;
    // Outside the view, remove_member finds such claims by the index.
    if (ab.made && !wanted) index_claim_outside_view(a, b);
    if (ba.made && !wanted) index_claim_outside_view(b, a);
  }
  if (wanted) {
    if (view_.add_link(a, b, rtt)) {
      ++view_generation_;
      cover_view_slots();
      move_claims_into_link(a, b);
    } else if (rtt != 0) {
      // Only a new measurement changes the weight; an unknown one keeps it.
      if (view_.set_weight(a, b, rtt)) ++view_generation_;
    }
  } else {
    move_claims_out_of_link(a, b);
    if (view_.remove_link(a, b)) ++view_generation_;
  }
}

}  // namespace p2pmesh
