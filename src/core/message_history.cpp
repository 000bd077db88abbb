#include "message_history.hpp"

#include <algorithm>

namespace p2pmesh {

std::size_t MessageHistory::held_bytes(const wire::Packet& packet) {
  // Payload, route and proofs, plus the bookkeeping of an entry (key, node, times).
  constexpr std::size_t kEntryOverhead = 96;
  return packet.payload.size() + packet.edges.size() * sizeof(wire::Edge) +
         packet.signature.size() + packet.receiver_tags.size() + kEntryOverhead;
}

void MessageHistory::remember(TimeUs now, const wire::Packet& packet) {
  expire(now);
  if (packet.seq == 0 || max_age_ <= 0) return;
  const std::size_t size = held_bytes(packet);
  if (size > max_bytes_) return;
  const Key key{packet.source, packet.seq};
  if (entries_.count(key)) return;  // the first copy is kept
  while (!order_.empty() && bytes_ + size > max_bytes_) pop_oldest();
  entries_.emplace(key, Entry{now, packet, {}});
  order_.push_back(key);
  bytes_ += size;
}

const wire::Packet* MessageHistory::find(TimeUs now, PeerId source, std::uint64_t seq) {
  expire(now);
  const auto it = entries_.find(Key{source, seq});
  return it == entries_.end() ? nullptr : &it->second.packet;
}

bool MessageHistory::covered(PeerId source, std::uint64_t seq, PeerId peer, TimeUs since) const {
  const auto it = entries_.find(Key{source, seq});
  if (it == entries_.end()) return false;
  std::vector<PeerId> recent;
  for (const auto& [at, served] : it->second.served) {
    if (at >= since) recent.push_back(served);
  }
  if (recent.empty()) return false;
  // Up from `peer` towards the source, parents by binary search (a held
  // route may be a chain of thousands of edges). A held route is a
  // validated tree, so the walk ends within its number of edges.
  std::vector<wire::Edge> by_child = it->second.packet.edges;
  std::sort(by_child.begin(), by_child.end(),
            [](const wire::Edge& a, const wire::Edge& b) { return a.v < b.v; });
  PeerId walk = peer;
  for (std::size_t hop = 0; hop <= by_child.size() && walk != kNoPeer; ++hop) {
    if (std::find(recent.begin(), recent.end(), walk) != recent.end()) return true;
    const auto up = std::lower_bound(
        by_child.begin(), by_child.end(), walk,
        [](const wire::Edge& edge, PeerId v) { return edge.v < v; });
    walk = up != by_child.end() && up->v == walk ? up->u : kNoPeer;
  }
  return false;
}

void MessageHistory::served(TimeUs now, PeerId source, std::uint64_t seq, PeerId peer) {
  const auto it = entries_.find(Key{source, seq});
  if (it == entries_.end()) return;
  auto& list = it->second.served;
  if (list.size() >= kMaxServedPerMessage) list.erase(list.begin());
  list.emplace_back(now, peer);
}

void MessageHistory::expire(TimeUs now) {
  while (!order_.empty() && entries_.at(order_.front()).at + max_age_ < now) pop_oldest();
}

void MessageHistory::pop_oldest() {
  const auto it = entries_.find(order_.front());
  bytes_ -= held_bytes(it->second.packet);
  entries_.erase(it);
  order_.pop_front();
}

}  // namespace p2pmesh
