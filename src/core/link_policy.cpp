#include "link_policy.hpp"

#include <algorithm>

namespace p2pmesh {

std::size_t LinkPolicy::linked_peer_count(const LinkTable& links) {
  // A handful of links: count distinct peers without allocating.
  const auto& all = links.all();
  std::size_t count = 0;
  for (auto it = all.begin(); it != all.end(); ++it) {
    const PeerId peer = it->peer;
    if (std::none_of(all.begin(), it, [peer](const Link& l) { return l.peer == peer; })) ++count;
  }
  return count;
}

bool LinkPolicy::in_back_off(PeerId peer, TimeUs now) const {
  auto it = backoff_until_.find(peer);
  return it != backoff_until_.end() && it->second > now;
}

std::vector<PeerId> LinkPolicy::peers_to_dial(const LinkTable& links,
                                              const Membership& membership, Random& random,
                                              TimeUs now) const {
  const std::size_t linked = linked_peer_count(links);
  if (linked >= config_->target_connections) return {};
  std::vector<PeerId> candidates;
  for (const PeerId peer : membership.members()) {
    if (!links.has_any_with(peer) && !in_back_off(peer, now)) candidates.push_back(peer);
  }
  return random.pick_distinct(std::move(candidates), config_->target_connections - linked);
}

LinkPolicy::OfferDecision LinkPolicy::on_offer(PeerId from, const LinkTable& links,
                                               const Membership& membership,
                                               Random& random, TimeUs now) const {
  OfferDecision decision;
  if (from == self_ || from == kNoPeer) return decision;

  if (const Link* theirs = links.find(from, false)) {
    // The peer dials again: its previous attempt is dead to it. Replace it.
    if (now - theirs->created_at < kRepeatOfferGap) return decision;
    decision.accept = true;
    decision.close = theirs->id;
    return decision;
  }
  if (const Link* ours = links.find(from, true)) {
    // Both dialled. The smaller id's offer wins; a pending loser is closed now,
    // an open one once the winner opens (duplicate_to_close).
    if (self_ < from) return decision;
    decision.accept = true;
    if (ours->state == LinkState::connecting) decision.close = ours->id;
    return decision;
  }

  if (linked_peer_count(links) < config_->max_connections) {
    decision.accept = true;
    return decision;
  }
  // Full. Admit a peer short of links by dropping one of ours.
  if (!config_->admit_when_full ||
      membership.view().neighbours(from).size() >= config_->target_connections) {
    return decision;
  }
  std::vector<LinkId> spare;  // links to neighbours that stay at target without us
  std::vector<LinkId> any;
  for (const Link& l : links.all()) {
    if (l.state != LinkState::open) continue;
    // Only links with peers of our protocol are shed: a reference peer does
    // not notice that a link it received was closed, keeps claiming it and
    // sends into it for good.
    if (membership.version_of(l.peer) == 0) continue;
    // A peer with a second link (both dialled, the other still pending)
    // keeps its slot when one closes: shedding it would not make room.
    if (links.find(l.peer, !l.initiated)) continue;
    any.push_back(l.id);
    if (membership.view().neighbours(l.peer).size() > config_->target_connections) {
      spare.push_back(l.id);
    }
  }
  const std::vector<LinkId>& pool = spare.empty() ? any : spare;
  if (pool.empty()) return decision;
  decision.accept = true;
  decision.close = pool[random.below(pool.size())];
  return decision;
}

std::optional<LinkId> LinkPolicy::duplicate_to_close(PeerId peer, const LinkTable& links) const {
  const Link* ours = links.find(peer, true);
  const Link* theirs = links.find(peer, false);
  if (!ours || !theirs || ours->state != LinkState::open || theirs->state != LinkState::open) {
    return std::nullopt;
  }
  return self_ < peer ? theirs->id : ours->id;
}

std::vector<LinkId> LinkPolicy::timed_out(const LinkTable& links, TimeUs now) const {
  std::vector<LinkId> expired;
  for (const Link& l : links.all()) {
    if (l.state == LinkState::connecting && now >= l.created_at + config_->link_connect_timeout) {
      expired.push_back(l.id);
    }
  }
  return expired;
}

void LinkPolicy::back_off(PeerId peer, TimeUs now) {
  const TimeUs until = now + config_->candidate_backoff;
  backoff_until_[peer] = until;
  earliest_backoff_end_ = std::min(earliest_backoff_end_, until);
}

void LinkPolicy::expire_back_offs(TimeUs now) {
  if (earliest_backoff_end_ > now) return;
  earliest_backoff_end_ = kNever;
  for (auto it = backoff_until_.begin(); it != backoff_until_.end();) {
    if (it->second <= now) {
      it = backoff_until_.erase(it);
    } else {
      earliest_backoff_end_ = std::min(earliest_backoff_end_, it->second);
      ++it;
    }
  }
}

TimeUs LinkPolicy::next_deadline(const LinkTable& links) const {
  TimeUs next = kNever;
  for (const Link& l : links.all()) {
    if (l.state == LinkState::connecting) {
      next = std::min(next, l.created_at + config_->link_connect_timeout);
    }
  }
  next = std::min(next, earliest_backoff_end_);
  return next;
}

}  // namespace p2pmesh
