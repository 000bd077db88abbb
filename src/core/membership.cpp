#include "membership.hpp"

#include <algorithm>

namespace p2pmesh {

Membership::Membership(PeerId self) : self_(self) { view_.add_peer(self); }

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
    auto it = members_.find(source);
    if (it != members_.end() && it->second.last_status_id &&
        update.status.id <= *it->second.last_status_id) {
      outcome.ignored = true;  // older or equal status id (WIRE.md §3)
      return outcome;
    }
  }
  if (add_member(source, now)) outcome.joined = source;
  Member& member = members_.at(source);
  member.last_heard = now;

  switch (update.kind) {
    case wire::MeshUpdate::Kind::status: {
      member.last_status_id = update.status.id;
      member.version = update.status.version;
      std::vector<Claim> claims;
      claims.reserve(update.status.connected_to.size());
      for (std::size_t i = 0; i < update.status.connected_to.size(); ++i) {
        const PeerId peer = update.status.connected_to[i];
        const std::uint32_t rtt =
            i < update.status.rtt_us.size() ? update.status.rtt_us[i] : 0;
        if (peer == kNoPeer || peer == source) continue;
        if (std::any_of(claims.begin(), claims.end(),
                        [peer](const Claim& c) { return c.peer == peer; })) {
          continue;  // a repeated entry counts once
        }
        claims.push_back({peer, rtt});
      }
      set_claims(source, std::move(claims));
      break;
    }
    case wire::MeshUpdate::Kind::connected_to:
      if (update.peer != kNoPeer && update.peer != source) add_claim(source, update.peer, 0);
      break;
    case wire::MeshUpdate::Kind::disconnected_from:
      remove_claim(source, update.peer);
      break;
    case wire::MeshUpdate::Kind::none:
      break;
  }
  return outcome;
}

bool Membership::add_member(PeerId peer, TimeUs now) {
  if (peer == kNoPeer || peer == self_) return false;
  auto [it, inserted] = members_.try_emplace(peer);
  if (!inserted) return false;
  it->second.last_heard = now;
  if (view_.add_peer(peer)) ++view_generation_;
  // Claims about the newcomer made before we knew it now count.
  if (auto by = claimed_by_.find(peer); by != claimed_by_.end()) {
    const std::vector<PeerId> claimers = by->second;
    for (const PeerId claimer : claimers) refresh_pair(claimer, peer);
  }
  refresh_pair(self_, peer);
  return true;
}

bool Membership::remove_member(PeerId peer) {
  auto it = members_.find(peer);
  if (it == members_.end()) return false;
  for (const Claim& claim : it->second.claims) erase_claimed_by(peer, claim.peer);
  members_.erase(it);
  // Claims others made about it go too: they would only describe dead links.
  if (auto by = claimed_by_.find(peer); by != claimed_by_.end()) {
    for (const PeerId claimer : by->second) {
      auto member = members_.find(claimer);
      if (member == members_.end()) continue;
      auto& claims = member->second.claims;
      claims.erase(std::remove_if(claims.begin(), claims.end(),
                                  [peer](const Claim& c) { return c.peer == peer; }),
                   claims.end());
    }
    claimed_by_.erase(by);
  }
  if (local_links_.count(peer)) {
    // Still linked to us: keep that link, drop the ones only its claims made.
    std::vector<PeerId> others;
    for (const Neighbour& n : view_.neighbours(peer)) {
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
  for (const auto& [peer, member] : members_) {
    if (member.last_heard < cutoff) silent.push_back(peer);
  }
  std::sort(silent.begin(), silent.end());
  return silent;
}

std::vector<PeerId> Membership::members() const {
  std::vector<PeerId> peers;
  peers.reserve(members_.size());
  for (const auto& entry : members_) peers.push_back(entry.first);
  std::sort(peers.begin(), peers.end());
  return peers;
}

std::uint32_t Membership::version_of(PeerId peer) const {
  auto it = members_.find(peer);
  return it == members_.end() ? 0 : it->second.version;
}

void Membership::set_claims(PeerId source, std::vector<Claim> claims) {
  Member& member = members_.at(source);
  std::vector<Claim> old = std::move(member.claims);
  member.claims = std::move(claims);
  const auto same = [](const std::vector<Claim>& list, const Claim& claim) {
    return std::any_of(list.begin(), list.end(), [&](const Claim& c) {
      return c.peer == claim.peer && c.rtt_us == claim.rtt_us;
    });
  };
  // Periodic statuses mostly repeat what we know: touch only what changed.
  for (const Claim& claim : old) {
    if (same(member.claims, claim)) continue;
    if (!find_claim(source, claim.peer)) erase_claimed_by(source, claim.peer);
    refresh_pair(source, claim.peer);
  }
  for (const Claim& claim : member.claims) {
    if (same(old, claim)) continue;
    auto& by = claimed_by_[claim.peer];
    if (std::find(by.begin(), by.end(), source) == by.end()) by.push_back(source);
    refresh_pair(source, claim.peer);
  }
}

void Membership::add_claim(PeerId source, PeerId peer, std::uint32_t rtt_us) {
  Member& member = members_.at(source);
  if (find_claim(source, peer)) return;
  member.claims.push_back({peer, rtt_us});
  claimed_by_[peer].push_back(source);
  refresh_pair(source, peer);
}

void Membership::remove_claim(PeerId source, PeerId peer) {
  Member& member = members_.at(source);
  auto& claims = member.claims;
  const auto end = std::remove_if(claims.begin(), claims.end(),
                                  [peer](const Claim& c) { return c.peer == peer; });
  if (end == claims.end()) return;
  claims.erase(end, claims.end());
  erase_claimed_by(source, peer);
  refresh_pair(source, peer);
}

void Membership::erase_claimed_by(PeerId claimer, PeerId peer) {
  auto it = claimed_by_.find(peer);
  if (it == claimed_by_.end()) return;
  auto& by = it->second;
  by.erase(std::remove(by.begin(), by.end(), claimer), by.end());
  if (by.empty()) claimed_by_.erase(it);
}

const Membership::Claim* Membership::find_claim(PeerId source, PeerId peer) const {
  auto it = members_.find(source);
  if (it == members_.end()) return nullptr;
  for (const Claim& claim : it->second.claims) {
    if (claim.peer == peer) return &claim;
  }
  return nullptr;
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
  } else if (is_member(a) && is_member(b)) {
    const Claim* ab = find_claim(a, b);
    const Claim* ba = find_claim(b, a);
    wanted = ab != nullptr || ba != nullptr;
    if (ab && ab->rtt_us) rtt = ab->rtt_us;
    if (ba && ba->rtt_us) rtt = rtt ? std::min(rtt, ba->rtt_us) : ba->rtt_us;
  }
  if (wanted) {
    if (view_.add_link(a, b, rtt)) {
      ++view_generation_;
    } else if (rtt != 0) {
      // Only a new measurement changes the weight; an unknown one keeps it.
      if (view_.set_weight(a, b, rtt)) ++view_generation_;
    }
  } else if (view_.remove_link(a, b)) {
    ++view_generation_;
  }
}

}  // namespace p2pmesh
